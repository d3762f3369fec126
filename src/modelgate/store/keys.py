"""API keys on the data floor: who a key is (``KeyIdentity``), and why a key is refused once
revoked (the ledgers' holds find that out; ``accounts/keys.py`` authenticates)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from modelgate.errors import AuthenticationError
from modelgate.store.budgets import BudgetRef
from modelgate.store.db import Conn
from modelgate.store.organisations import ORG_WIDE_ROLES
from modelgate.store.schema import Account, ApiKey
from modelgate.store.schema_web import PlaygroundKey
from modelgate.store.sqlite_wal import sqlite_timestamp
from modelgate.store.sqlite_writer import SQLiteWriter

INVALID_KEY_MESSAGE = (
    "This request requires a valid API key. You can create a new API key on the Keys page: /app/keys"
)

ACCOUNT_DISABLED_MESSAGE = "This account is disabled. Contact the operator of this gateway."
DISABLED_KEY_MESSAGE = "This API key is disabled. Enable it on the Keys page or use another key."


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """Who is calling: resolved from a valid, enabled key."""

    key_id: int
    account_id: int
    prefix: str
    digest: str
    is_management: bool
    scopes: tuple[str, ...] | None  # None = every scope
    limit_retention: str | None
    limit_credits: int | None
    # Organisations (migration 0012): the key's project and member, the budgets it falls under
    # (checked in its hold), the models it may call (the key's and its project's lists together;
    # None: any), its own and its project's rate limits, and when it expires.
    project_id: int | None = None
    member_id: int | None = None
    budgets: tuple[BudgetRef, ...] = ()
    allowed_models: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    project_rpm: int | None = None
    project_tpm: int | None = None
    expires_at: datetime | None = None
    org_role: str | None = None  # the member's role in the organisation (None: not a member)
    cache_mode: str | None = None  # the key's response-cache policy (docs/cache.md; None: the default)

    def allows(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    @property
    def scope_project(self) -> int | None:
        """The one project whose keys, logs, usage, responses and budgets this key may read or
        manage; None: the whole organisation (its owners, admins and billing role)."""
        if self.org_role in ORG_WIDE_ROLES or self.project_id is None:
            return None
        return self.project_id

    @property
    def may_manage_keys(self) -> bool:
        """The billing role reads; it does not create, change or delete keys."""
        return self.org_role != "billing"


class KeyRevokedError(AuthenticationError):
    """A key that authenticated (from this instance's cache) was found revoked when its request
    was held: deleted, disabled, or its account disabled since. The message is the one a fresh
    lookup gives; ``key_id`` tells the authenticator which key to forget."""

    def __init__(self, message: str, *, key_id: int) -> None:
        super().__init__(message)
        self.key_id = key_id


def revoked_key_error(
    *, key_id: int, gone: bool, account_disabled: bool, key_disabled: bool
) -> KeyRevokedError | None:
    """The refusal for a key in this state (the checks of ``KeyAuthenticator._load``, in its
    order), or None when the key is live."""
    if gone:
        return KeyRevokedError(INVALID_KEY_MESSAGE, key_id=key_id)
    if account_disabled:
        return KeyRevokedError(ACCOUNT_DISABLED_MESSAGE, key_id=key_id)
    if key_disabled:
        return KeyRevokedError(DISABLED_KEY_MESSAGE, key_id=key_id)
    return None


async def prefix_taken(conn: Conn, *, prefix: str) -> bool:
    return (await conn.execute(select(ApiKey.id).where(ApiKey.prefix == prefix))).first() is not None


async def insert_key(conn: Conn, **columns: Any) -> int:
    """A new ``api_keys`` row of checked column values (``accounts/service.py`` makes keys); its id."""
    result = await conn.execute(insert(ApiKey).values(**columns).returning(ApiKey.id))
    return int(result.scalar_one())


async def key_row_by_digest(conn: Conn, *, digest: str) -> dict[str, Any] | None:
    """Every column of the live key with this digest, and ``account_disabled``."""
    row = (
        await conn.execute(
            select(ApiKey, Account.disabled.label("account_disabled"))
            .join(Account, Account.id == ApiKey.account_id)
            .where(ApiKey.digest == digest, ApiKey.deleted_at.is_(None))
        )
    ).first()
    return dict(row._mapping) if row is not None else None


async def set_last_used(conn: Conn, used: dict[int, datetime]) -> None:
    for key_id, when in used.items():
        await conn.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))


def last_used_through(writer: SQLiteWriter) -> Callable[[dict[int, datetime]], asyncio.Future[None]]:
    """``set_last_used`` on a SQLite file: one operation of the group-commit writer (one statement in
    its next batch). Through a pooled connection, the UPDATEs held SQLite's write lock from the first
    one to the COMMIT, across event-loop iterations (one per key, then the commit): on a busy loop, a
    burst's flush kept the writer's holds waiting 0.2-0.6 s (measured)."""

    def write(used: dict[int, datetime]) -> asyncio.Future[None]:
        rows = [(sqlite_timestamp(when), key_id) for key_id, when in used.items()]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany("UPDATE api_keys SET last_used_at = ? WHERE id = ?", rows)

        return writer.submit(op)

    return write


# -- the Keys page and the playground's internal key --------------------------------------------


def _hidden(account_id: int) -> Any:
    return select(PlaygroundKey.key_id).where(PlaygroundKey.account_id == account_id)


async def page_keys(conn: Conn, *, account_id: int) -> list[dict[str, Any]]:
    """The account's live listed keys, newest first, every column (the Keys page)."""
    rows = (
        await conn.execute(
            select(ApiKey)
            .where(
                ApiKey.account_id == account_id,
                ApiKey.deleted_at.is_(None),
                ApiKey.id.not_in(_hidden(account_id)),
            )
            .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def update_owned_key(conn: Conn, *, account_id: int, key_id: int, **values: Any) -> None:
    """Change a live, listed key of ``account_id`` (the Keys page's toggle and delete)."""
    await conn.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            ApiKey.account_id == account_id,
            ApiKey.deleted_at.is_(None),
            ApiKey.id.not_in(_hidden(account_id)),
        )
        .values(**values)
    )


async def live_key_with_digest(conn: Conn, *, account_id: int, digest: str) -> bool:
    q = select(ApiKey.id).where(
        ApiKey.digest == digest, ApiKey.account_id == account_id, ApiKey.deleted_at.is_(None)
    )
    return (await conn.execute(q)).first() is not None


async def key_labels(conn: Conn, *, account_id: int) -> dict[int, str]:
    """Every key of the account (deleted ones too: their requests stay in the logs) -> label."""
    playground = set((await conn.execute(_hidden(account_id))).scalars().all())
    rows = (
        await conn.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.prefix, ApiKey.deleted_at)
            .where(ApiKey.account_id == account_id)
            .order_by(ApiKey.id)
        )
    ).all()
    labels: dict[int, str] = {}
    for r in rows:
        if r.id in playground:
            labels[r.id] = "Playground"
            continue
        label = f"{r.name or 'key'} ({r.prefix}…)"
        labels[r.id] = label + (" · deleted" if r.deleted_at is not None else "")
    return labels


async def playground_identity(conn: Conn, *, account_id: int) -> KeyIdentity | None:
    """The account's live internal playground key (``web/playground.py``), as its calls are made:
    never a management key, no spending limit."""
    row = (
        await conn.execute(
            select(ApiKey)
            .join(PlaygroundKey, PlaygroundKey.key_id == ApiKey.id)
            .where(PlaygroundKey.account_id == account_id, ApiKey.deleted_at.is_(None))
        )
    ).first()
    if row is None:
        return None
    k = row._mapping
    return KeyIdentity(
        key_id=k["id"],
        account_id=k["account_id"],
        prefix=k["prefix"],
        digest=k["digest"],
        is_management=False,
        scopes=tuple(k["scopes"]) if k["scopes"] is not None else None,
        limit_retention=None,
        limit_credits=None,
    )


async def set_playground_key(conn: Conn, *, account_id: int, key_id: int) -> None:
    await conn.execute(delete(PlaygroundKey).where(PlaygroundKey.account_id == account_id))
    await conn.execute(insert(PlaygroundKey).values(account_id=account_id, key_id=key_id))
