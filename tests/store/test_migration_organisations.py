"""Migration 0012 (organisations) upgrades a database as the previous release made it (built by the
migrations up to 0011), with rows in every table, and loses nothing: every account becomes a
personal organisation with a default project, every key joins it, balances, ledger, holds, logs,
stored responses and settings are untouched, and the keys still authenticate and hold."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from modelgate.accounts.keys import KeyAuthenticator, key_digest
from modelgate.store.db import Database
from modelgate.store.ledger import Ledger
from modelgate.store.migrate import upgrade
from tests.conftest import PG_ADMIN_URL

# Every table as 0011 left it, with the columns the old code wrote.
OLD_ROWS: list[tuple[str, dict[str, Any]]] = [
    (
        "accounts",
        {
            "id": 1,
            "email": "ann@example.com",
            "password_hash": "h",
            "balance_credits": 5000,
            "is_admin": True,
            "disabled": False,
            "created_at": "2026-11-01 00:00:00",
        },
    ),
    (
        "accounts",
        {
            "id": 2,
            "email": "bob@example.com",
            "password_hash": None,
            "balance_credits": 70,
            "is_admin": False,
            "disabled": False,
            "created_at": "2026-11-02 00:00:00",
        },
    ),
    (
        "api_keys",
        {
            "id": 10,
            "account_id": 1,
            "prefix": "aaaaaaaa",
            "digest": key_digest("a" * 32),
            "name": "ann's",
            "is_management": False,
            "disabled": False,
            "scopes": None,
            "limit_retention": "day",
            "limit_credits": 4000,
            "created_at": "2026-11-01 00:00:00",
            "updated_at": "2026-11-01 00:00:00",
        },
    ),
    (
        "api_keys",
        {
            "id": 11,
            "account_id": 2,
            "prefix": "bbbbbbbb",
            "digest": key_digest("b" * 32),
            "name": None,
            "is_management": True,
            "disabled": False,
            "scopes": None,
            "limit_retention": None,
            "limit_credits": None,
            "created_at": "2026-11-02 00:00:00",
            "updated_at": "2026-11-02 00:00:00",
        },
    ),
    ("key_spend", {"key_id": 10, "period": "day:2026-11-01", "spent_credits": 12, "held_credits": 0}),
    (
        "ledger",
        {
            "id": 1,
            "account_id": 1,
            "key_id": None,
            "kind": "topup",
            "credits": 5100,
            "reference_id": None,
            "description": "top-up",
            "model": None,
            "created_at": "2026-11-01 00:00:00",
        },
    ),
    (
        "ledger",
        {
            "id": 2,
            "account_id": 1,
            "key_id": 10,
            "kind": "charge",
            "credits": -100,
            "reference_id": "inf-1",
            "description": "m",
            "model": "m",
            "created_at": "2026-11-01 00:01:00",
        },
    ),
    (
        "holds",
        {
            "inference_id": "inf-2",
            "account_id": 1,
            "key_id": 10,
            "period": None,
            "credits": 5,
            "created_at": "2026-11-01 00:02:00",
            "owner": None,
        },
    ),
    (
        "request_logs",
        {
            "inference_id": "inf-1",
            "account_id": 1,
            "key_id": 10,
            "key_prefix": "aaaaaaaa",
            "model": "m",
            "provider": "p",
            "status": "success",
            "http_status": 200,
            "origin": "api",
            "door": "chat",
            "stream": False,
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "reasoning_tokens": 0,
            "cached_tokens": 0,
            "credits": 100,
            "latency_ms": 7,
            "created_at": "2026-11-01 00:01:00",
        },
    ),
    ("settings", {"key": "site_name", "value": "gw"}),
    (
        "web_sessions",
        {
            "digest": "d" * 64,
            "account_id": 1,
            "csrf_token": "c",
            "created_at": "2026-11-01 00:00:00",
            "expires_at": "2099-01-01 00:00:00",
        },
    ),
    ("web_playground_keys", {"account_id": 1, "key_id": 10}),
    (
        "audit_log",
        {
            "id": 1,
            "actor_id": None,
            "actor": "cli",
            "action": "top_up",
            "account_id": 1,
            "detail": "x",
            "created_at": "2026-11-01 00:00:00",
        },
    ),
    (
        "web_signin_links",
        {
            "digest": "e" * 64,
            "account_id": 2,
            "created_at": "2026-11-01 00:00:00",
            "expires_at": "2099-01-01 00:00:00",
        },
    ),
    (
        "responses",
        {
            "id": "resp_1",
            "account_id": 1,
            "key_id": 10,
            "model": "m",
            "provider": "p",
            "native": False,
            "previous_response_id": None,
            "thread_id": "resp_1",
            "body": "{}",
            "created_at": "2026-11-01 00:00:00",
            "expires_at": "2099-01-01 00:00:00",
        },
    ),
    (
        "scim_resources",
        {
            "id": "s1",
            "tenant": "t",
            "resource_type": "User",
            "unique_value": "bob@example.com",
            "account_id": 2,
            "version": 1,
            "body": "{}",
            "created_at": "2026-11-02 00:00:00",
            "updated_at": "2026-11-02 00:00:00",
        },
    ),
    (
        "oidc_logins",
        {
            "digest": "f" * 64,
            "provider": "idp",
            "code_verifier": "v",
            "nonce": "n",
            "next_path": "/app",
            "expires_at": "2099-01-01 00:00:00",
        },
    ),
    (
        "account_identities",
        {
            "id": 1,
            "account_id": 2,
            "provider": "idp",
            "issuer": "https://idp",
            "subject": "bob",
            "email": "bob@example.com",
            "groups": None,
            "created_at": "2026-11-02 00:00:00",
            "last_sign_in_at": "2026-11-02 00:00:00",
        },
    ),
    (
        "response_items",
        {
            "response_id": "resp_1",
            "position": 0,
            "kind": "input",
            "item_id": "msg_1",
            "account_id": 1,
            "data": "{}",
        },
    ),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    import asyncpg

    name = f"mg_mig_{secrets.token_hex(4)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(run(f'CREATE DATABASE "{name}"'))
    except OSError:
        pytest.skip("no PostgreSQL")
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _literal(value: Any, dialect: str) -> Any:
    if isinstance(value, str) and dialect == "postgresql" and value[:2] == "20" and value[4] == "-":
        from datetime import UTC, datetime

        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


async def _scenario(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db.engine, "0011")
        dialect = db.engine.dialect.name
        async with db.engine.begin() as conn:
            for table, row in OLD_ROWS:
                cols = ", ".join(row)
                marks = ", ".join(f":{c}" for c in row)
                await conn.execute(
                    text(f"INSERT INTO {table} ({cols}) VALUES ({marks})"),
                    {k: _literal(v, dialect) for k, v in row.items()},
                )
            if dialect == "postgresql":
                for table in ("accounts", "api_keys", "ledger", "audit_log", "account_identities"):
                    await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 100)"))
        before = await _dump(db)
        await upgrade(db.engine)
        after = await _dump(db)
        for table, rows in before.items():
            cols = list(rows[0])
            kept = sorted(({c: r[c] for c in cols} for r in after[table]), key=repr)
            assert kept == sorted(rows, key=repr), table  # every row, every old column as it was
        async with db.engine.connect() as conn:
            orgs = (
                await conn.execute(text("SELECT id, name, personal FROM organisations ORDER BY id"))
            ).all()
            assert [(o[0], o[1], bool(o[2])) for o in orgs] == [
                (1, "ann@example.com", True),
                (2, "bob@example.com", True),
            ]
            members = (await conn.execute(text("SELECT org_id, account_id, role FROM org_members"))).all()
            assert sorted(tuple(m) for m in members) == [(1, 1, "owner"), (2, 2, "owner")]
            projects = dict(
                (await conn.execute(text("SELECT org_id, id FROM projects WHERE is_default"))).all()
            )
            assert set(projects) == {1, 2}
            keys = (
                await conn.execute(text("SELECT id, project_id, member_id FROM api_keys ORDER BY id"))
            ).all()
            assert [tuple(k) for k in keys] == [(10, projects[1], 1), (11, projects[2], 2)]
            pm = (await conn.execute(text("SELECT project_id, account_id, role FROM project_members"))).all()
            assert sorted(tuple(m) for m in pm) == sorted(
                [(projects[1], 1, "owner"), (projects[2], 2, "owner")]
            )
            assert (await conn.execute(text("SELECT count(*) FROM budgets"))).scalar_one() == 0
        # The old key still authenticates, falls under its new project and holds (its day limit too).
        ident = await KeyAuthenticator(db.engine).authenticate("a" * 32)
        assert (ident.account_id, ident.project_id, ident.member_id, ident.budgets) == (1, projects[1], 1, ())
        ledger = Ledger(db.engine)
        ticket = await ledger.hold(ident=ident, inference_id="inf-3", credits=10)
        assert await ledger.settle(ticket, credits=10) == 10
        async with db.engine.connect() as conn:
            assert (
                await conn.execute(text("SELECT balance_credits FROM accounts WHERE id = 1"))
            ).scalar_one() == 4990
        # A new account gets its personal organisation without id clashes.
        from modelgate.accounts.service import create_account, create_key

        async with db.engine.begin() as conn:
            cid = await create_account(conn, email="cy@example.com", password="password123")
            new = await create_key(conn, account_id=cid)
        async with db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT k.project_id, p.org_id FROM api_keys k JOIN projects p ON p.id = k.project_id"
                        " WHERE k.id = :k"
                    ),
                    {"k": new.key_id},
                )
            ).one()
            assert row[1] == cid
    finally:
        await db.aclose()


async def _dump(db: Database) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    async with db.engine.connect() as conn:
        for table in sorted({t for t, _ in OLD_ROWS}):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            out[table] = [dict(r._mapping) for r in rows]
    return out


def test_upgrade_keeps_everything(fresh_url: str) -> None:
    asyncio.run(_scenario(fresh_url))
