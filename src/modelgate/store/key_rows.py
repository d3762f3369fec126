"""An account's keys on the data floor: listing, reading, writing checked changes, soft-deleting,
and what each key spent (from the ledger; a limit's period spend in ``key_spend``). Each runs in
the caller's transaction; ``accounts/manage.py`` checks changes before ``write_key``. After a write
or a delete the caller must invalidate the ``KeyAuthenticator`` cache
(``await keys.revoke(key_id=...)``) so that a disabled or deleted key is refused on its very next
request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.db import dialect_insert
from modelgate.store.ledger import month_start, period_key, period_start
from modelgate.store.schema import ApiKey, KeySpend, LedgerEntry, utcnow
from modelgate.store.schema_web import PlaygroundKey


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    account_id: int
    prefix: str
    name: str | None
    is_management: bool
    disabled: bool
    scopes: list[str] | None
    limit_retention: str | None
    limit_credits: int | None
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None
    deleted_at: datetime | None
    project_id: int | None
    member_id: int | None
    allowed_models: list[str] | None
    rpm: int | None
    tpm: int | None
    expires_at: datetime | None
    cache_mode: str | None


def _record(row: Any) -> KeyRecord:
    m = row._mapping
    return KeyRecord(**{f: m[f] for f in KeyRecord.__slots__})


_COLUMNS = [getattr(ApiKey, f) for f in KeyRecord.__slots__]
# Internal keys (the web playground's) are never listed, fetched or changed through the key API.
_NOT_INTERNAL = ApiKey.id.not_in(select(PlaygroundKey.key_id))


async def list_keys(
    conn: AsyncConnection, *, account_id: int, management: bool | None = False, project_id: int | None = None
) -> list[KeyRecord]:
    """The account's live keys, oldest first. ``management``: False = regular keys only (what
    ``GET /v1/keys`` lists), True = management keys only, None = both. ``project_id``: only that
    project's (a caller confined to it, ``KeyIdentity.scope_project``)."""
    q = select(*_COLUMNS).where(ApiKey.account_id == account_id, ApiKey.deleted_at.is_(None), _NOT_INTERNAL)
    if project_id is not None:
        q = q.where(ApiKey.project_id == project_id)
    if management is not None:
        q = q.where(ApiKey.is_management.is_(management))
    rows = (await conn.execute(q.order_by(ApiKey.created_at, ApiKey.id))).all()
    return [_record(r) for r in rows]


async def get_key(
    conn: AsyncConnection,
    *,
    account_id: int,
    prefix: str,
    include_deleted: bool = False,
    project_id: int | None = None,
) -> KeyRecord | None:
    """One of the account's keys by its 8-character prefix (None when not the account's, or not in
    ``project_id`` when given)."""
    q = select(*_COLUMNS).where(ApiKey.account_id == account_id, ApiKey.prefix == prefix, _NOT_INTERNAL)
    if project_id is not None:
        q = q.where(ApiKey.project_id == project_id)
    if not include_deleted:
        q = q.where(ApiKey.deleted_at.is_(None))
    row = (await conn.execute(q)).first()
    return _record(row) if row is not None else None


async def get_key_by_id(conn: AsyncConnection, *, key_id: int) -> KeyRecord | None:
    row = (await conn.execute(select(*_COLUMNS).where(ApiKey.id == key_id))).first()
    return _record(row) if row is not None else None


async def latest_used_key(
    conn: AsyncConnection, *, account_id: int, project_id: int | None = None
) -> KeyRecord | None:
    """The account's most recently used live regular key (the newest one when none was used), in
    ``project_id`` when given."""
    q = (
        select(*_COLUMNS)
        .where(
            ApiKey.account_id == account_id,
            ApiKey.deleted_at.is_(None),
            ApiKey.is_management.is_(False),
            _NOT_INTERNAL,
            *((ApiKey.project_id == project_id,) if project_id is not None else ()),
        )
        .order_by(ApiKey.last_used_at.is_(None), ApiKey.last_used_at.desc(), ApiKey.id.desc())
        .limit(1)
    )
    row = (await conn.execute(q)).first()
    return _record(row) if row is not None else None


async def write_key(conn: AsyncConnection, *, key_id: int, values: dict[str, Any]) -> KeyRecord:
    """Write checked column values (``accounts/manage.py`` checks them); the key as it now is."""
    await conn.execute(update(ApiKey).where(ApiKey.id == key_id).values(updated_at=utcnow(), **values))
    rec = await get_key_by_id(conn, key_id=key_id)
    assert rec is not None
    return rec


async def delete_key(conn: AsyncConnection, *, key_id: int) -> bool:
    """Soft-delete (the prefix stays reserved and the key's history stays readable); True if it was live."""
    res = await conn.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.deleted_at.is_(None))
        .values(deleted_at=utcnow(), disabled=True, updated_at=utcnow())
    )
    return bool(res.rowcount == 1)


async def key_spend_since(
    conn: AsyncConnection, *, key_ids: list[int], since: datetime | None
) -> dict[int, int]:
    """Credits charged to each key since ``since`` (all time when None), from the ledger."""
    if not key_ids:
        return {}
    q = (
        select(LedgerEntry.key_id, func.coalesce(func.sum(-LedgerEntry.credits), 0))
        .where(LedgerEntry.key_id.in_(key_ids), LedgerEntry.kind == "charge")
        .group_by(LedgerEntry.key_id)
    )
    if since is not None:
        q = q.where(LedgerEntry.created_at >= since)
    return {int(k): int(v) for k, v in (await conn.execute(q)).all() if k is not None}


async def monthly_usage(conn: AsyncConnection, *, key_ids: list[int]) -> dict[int, int]:
    """Credits each key was charged in the current calendar month (UTC)."""
    return await key_spend_since(conn, key_ids=key_ids, since=month_start())


async def seed_spend(conn: AsyncConnection, *, key_id: int, retention: str) -> None:
    period = period_key(retention)
    spent = (await key_spend_since(conn, key_ids=[key_id], since=period_start(retention))).get(key_id, 0)
    ins = dialect_insert(conn.dialect.name, KeySpend)
    await conn.execute(
        ins.values(key_id=key_id, period=period, spent_credits=spent, held_credits=0).on_conflict_do_update(
            index_elements=[KeySpend.key_id, KeySpend.period], set_={"spent_credits": spent}
        )
    )


async def period_spend(conn: AsyncConnection, periods: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Settled + held credits of each ``(key_id, period)`` asked for (absent: nothing spent)."""
    spend: dict[tuple[int, str], int] = {}
    if not periods:
        return spend
    rows = await conn.execute(
        select(KeySpend.key_id, KeySpend.period, KeySpend.spent_credits, KeySpend.held_credits).where(
            KeySpend.key_id.in_({p[0] for p in periods}),
            KeySpend.period.in_({p[1] for p in periods}),
        )
    )
    for key_id, period, spent, held in rows.all():
        spend[(key_id, period)] = int(spent or 0) + int(held or 0)
    return spend
