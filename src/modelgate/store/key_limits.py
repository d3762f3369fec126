"""Key spending limits as the Keys page shows them: when each key was last refused by its limit.

A hold its limit cannot cover writes nothing (the ledger's contract), but the refused request is
logged like any other, with the error text that begins ``errors.SPEND_LIMIT_REACHED``; the latest
such row per key tells the page to mark the key "limit reached" even when nothing was spent (a
limit smaller than one request's hold).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.errors import SPEND_LIMIT_REACHED
from modelgate.store.schema import RequestLog


def aware(value: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def last_limit_refusals(conn: AsyncConnection, key_ids: Iterable[int]) -> dict[int, datetime]:
    """key id -> the time of its latest request refused by its spending limit."""
    ids = list(key_ids)
    if not ids:
        return {}
    rows = (
        await conn.execute(
            select(RequestLog.key_id, func.max(RequestLog.created_at))
            .where(
                RequestLog.key_id.in_(ids),
                RequestLog.http_status == 403,
                RequestLog.error_message.startswith(SPEND_LIMIT_REACHED, autoescape=True),
            )
            .group_by(RequestLog.key_id)
        )
    ).all()
    return {int(key_id): aware(when) for key_id, when in rows if key_id is not None and when is not None}
