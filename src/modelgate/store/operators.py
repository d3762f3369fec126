"""Operator actions on accounts, and their audit log (keyword-only, in the caller's transaction).

An *operator* is an account with ``accounts.is_admin`` set: the first-start admin account, or one
promoted with ``modelgate admin make-operator``. Operators use the console at ``/admin``; every
change they make (and every ``modelgate admin`` command that changes an account) is written to
``audit_log`` by ``audit(...)`` (store/audit.py, the one audit log) in the same transaction as the
change itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.audit import Actor, audit
from modelgate.store.schema import Account, ApiKey
from modelgate.store.schema_web import AuditEntry, PlaygroundKey, WebSession

CLI_ACTOR = "command line"
CLI = Actor(None, CLI_ACTOR)


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    created_at: datetime
    actor: str
    action: str
    account_id: int | None
    account_email: str | None
    detail: str | None


async def recent_audit(
    conn: AsyncConnection, *, limit: int = 50, account_id: int | None = None
) -> list[AuditRow]:
    q = (
        select(
            AuditEntry.id,
            AuditEntry.created_at,
            AuditEntry.actor,
            AuditEntry.action,
            AuditEntry.account_id,
            Account.email,
            AuditEntry.detail,
        )
        .outerjoin(Account, Account.id == AuditEntry.account_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    if account_id is not None:
        q = q.where(AuditEntry.account_id == account_id)
    return [AuditRow(*row) for row in (await conn.execute(q)).all()]


async def set_account_disabled(
    conn: AsyncConnection, *, account_id: int, disabled: bool, actor: Actor
) -> list[int]:
    """Disable (or enable) an account; returns the ids of its keys, which the caller must
    invalidate in the key cache (``await state.keys.revoke(key_id=...)``) once committed. Disabling
    also ends the account's web sessions (enabling it does not bring them back)."""
    await conn.execute(update(Account).where(Account.id == account_id).values(disabled=disabled))
    if disabled:
        await conn.execute(delete(WebSession).where(WebSession.account_id == account_id))
    await audit(
        conn, actor=actor, action="account.disable" if disabled else "account.enable", account_id=account_id
    )
    rows = await conn.execute(select(ApiKey.id).where(ApiKey.account_id == account_id))
    return [int(r[0]) for r in rows]


async def set_operator(conn: AsyncConnection, *, account_id: int, operator: bool, actor: Actor) -> None:
    await conn.execute(update(Account).where(Account.id == account_id).values(is_admin=operator))
    await audit(
        conn,
        actor=actor,
        action="account.make_operator" if operator else "account.remove_operator",
        account_id=account_id,
    )


# -- the operator console's reads and key switch --------------------------------------------------


def _like(q: str) -> str:
    return "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def find_accounts(
    conn: AsyncConnection, *, q: str, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """``(how many accounts match, this page of them newest first)``: each with its live listed keys'
    count; ``q`` is a case-insensitive part of the email (empty: every account)."""
    keys = (
        select(ApiKey.account_id, func.count().label("keys"))
        .where(ApiKey.deleted_at.is_(None), ApiKey.id.not_in(select(PlaygroundKey.key_id)))
        .group_by(ApiKey.account_id)
        .subquery()
    )
    query = select(
        Account.id,
        Account.email,
        Account.balance_credits,
        Account.is_admin,
        Account.disabled,
        Account.created_at,
        func.coalesce(keys.c["keys"], 0).label("keys"),
    ).outerjoin(keys, keys.c.account_id == Account.id)
    count = select(func.count()).select_from(Account)
    if q:
        query = query.where(Account.email.like(_like(q), escape="\\"))
        count = count.where(Account.email.like(_like(q), escape="\\"))
    total = int((await conn.execute(count)).scalar_one())
    rows = (await conn.execute(query.order_by(Account.id.desc()).limit(limit).offset(offset))).all()
    return total, [dict(r._mapping) for r in rows]


async def account_row(conn: AsyncConnection, *, account_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(Account).where(Account.id == account_id))).first()
    return dict(row._mapping) if row is not None else None


async def account_exists(conn: AsyncConnection, *, account_id: int) -> bool:
    return (await conn.execute(select(Account.id).where(Account.id == account_id))).first() is not None


async def live_keys(conn: AsyncConnection, *, account_id: int) -> list[dict[str, Any]]:
    """The account's live keys, newest first, every column and ``playground`` (its internal key)."""
    playground = set((await conn.execute(select(PlaygroundKey.key_id))).scalars().all())
    rows = (
        await conn.execute(
            select(ApiKey)
            .where(ApiKey.account_id == account_id, ApiKey.deleted_at.is_(None))
            .order_by(ApiKey.id.desc())
        )
    ).all()
    return [{**dict(k._mapping), "playground": k.id in playground} for k in rows]


async def set_key_disabled(conn: AsyncConnection, *, key_id: int, disabled: bool) -> int | None:
    """Disable (or enable) a key; its account's id, or None for an unknown key (nothing changed)."""
    row = (await conn.execute(select(ApiKey.account_id).where(ApiKey.id == key_id))).first()
    if row is None:
        return None
    await conn.execute(update(ApiKey).where(ApiKey.id == key_id).values(disabled=disabled))
    return int(row[0])
