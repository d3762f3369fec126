"""Helpers shared by the accounts/billing/usage tests: HTTP shortcuts against the live server,
direct reads of the money tables, and the books-balance invariant."""

from __future__ import annotations

import time
from typing import Any

import requests
from sqlalchemy import func, select

from modelgate.store.db import Database
from modelgate.store.schema import Account, Hold, LedgerEntry
from tests.spec_helpers import response_schema, validate

CREDITS_PER_USD = 2_000_000


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(server: Any, key: str, text: str = "hello there", **kw: Any) -> requests.Response:
    headers = {**auth(key), **kw.pop("headers", {})}
    body = {"model": kw.pop("model", "echo"), "messages": [{"role": "user", "content": text}], **kw}
    return requests.post(f"{server.url}/v1/chat/completions", headers=headers, json=body, timeout=20)


def get(server: Any, path: str, key: str | None, **params: Any) -> requests.Response:
    headers = auth(key) if key else {}
    return requests.get(f"{server.url}{path}", headers=headers, params=params, timeout=60)


def check(resp: requests.Response, spec: str, path: str, method: str = "get") -> dict[str, Any]:
    """200 and valid against the spec's 200 schema; returns the body."""
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    validate(body, response_schema(spec, path, method))
    return body


def error(resp: requests.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["statusCode"] == status and body["message"] == body["error"]["message"]
    return body


def db_read(server: Any, fn: Any) -> Any:
    """Run ``fn(conn)`` (a coroutine function) against the server's database."""

    async def go() -> Any:
        db = Database(server.settings.database_url)
        try:
            async with db.engine.connect() as conn:
                return await fn(conn)
        finally:
            await db.aclose()

    return server.run(go())


def account_state(server: Any, email: str) -> dict[str, int]:
    async def fn(conn: Any) -> dict[str, int]:
        acc = (
            await conn.execute(select(Account.id, Account.balance_credits).where(Account.email == email))
        ).one()
        ledger = (
            await conn.execute(
                select(func.coalesce(func.sum(LedgerEntry.credits), 0)).where(
                    LedgerEntry.account_id == acc[0]
                )
            )
        ).scalar()
        charges = (
            await conn.execute(
                select(func.coalesce(func.sum(-LedgerEntry.credits), 0), func.count()).where(
                    LedgerEntry.account_id == acc[0], LedgerEntry.kind == "charge"
                )
            )
        ).one()
        holds = (
            await conn.execute(select(func.count()).select_from(Hold).where(Hold.account_id == acc[0]))
        ).scalar()
        return {
            "balance": int(acc[1]),
            "ledger": int(ledger),
            "charged": int(charges[0]),
            "charges": int(charges[1]),
            "holds": int(holds),
        }

    result: dict[str, int] = db_read(server, fn)
    return result


def holds_total(server: Any) -> int:
    async def fn(conn: Any) -> int:
        return int((await conn.execute(select(func.count()).select_from(Hold))).scalar())

    result: int = db_read(server, fn)
    return result


def wait_for(predicate: Any, timeout: float = 10.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every)


def all_logs(server: Any, key: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        r = get(server, "/v2/logs", key, period="1d", limit=100, offset=offset, **params)
        body = check(r, "logs-v2.json", "/v2/logs")
        rows.extend(body["data"])
        if not body["pagination"]["has_more"]:
            return rows
        offset += 100


def assert_books_balance(
    server: Any, email: str, key: str, *, initial_credits: int, requests_made: int, overdraft: int = 0
) -> None:
    """Ledger sum == balance; -(charges) == sum of /v2/logs costs == balance change; no open hold;
    one log row per request; the balance below zero by at most ``overdraft`` (the overage rule)."""
    wait_for(lambda: account_state(server, email)["holds"] == 0)
    wait_for(lambda: len(all_logs(server, key)) == requests_made)
    state = account_state(server, email)
    logs = all_logs(server, key)
    log_cost = sum(row["cost"]["credits"] for row in logs)
    assert state["ledger"] == state["balance"]
    assert state["charged"] == log_cost == initial_credits - state["balance"]
    assert state["balance"] >= -overdraft
    # A failed request costs nothing, unless its stream failed after output reached the client (then
    # it is charged for what was produced, like an abandoned stream): never more than the charges.
    assert sum(row["cost"]["credits"] for row in logs if row["status"] == "failed") <= state["charged"]
