"""Stored prompt and answer bodies (body logging, docs/observability.md): their rows, how the batched
writers insert them, the lookup of the request-detail page and the operator's lookup, and the
retention sweep.

Rows are written off the request path by the process's batched writer, never in a transaction of
their own: the SQLite group-commit writer (``INSERT_SQLITE``, one ``executemany`` per batch), the
PostgreSQL settle lane (``INSERT_PG``, one statement per batch) or the in-memory log sink. The sweep
is one conditional DELETE: safe to run on every instance at once, and idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.db import dialect_insert
from modelgate.store.schema import RequestBody

COLUMNS = (
    "inference_id",
    "account_id",
    "request",
    "response",
    "request_truncated",
    "response_truncated",
    "created_at",
)
INSERT_SQLITE = (
    f"INSERT OR IGNORE INTO request_bodies ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)
INSERT_PG = (
    f"INSERT INTO request_bodies ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)}"
    " FROM jsonb_populate_recordset(NULL::request_bodies, $1::jsonb) ON CONFLICT DO NOTHING"
)


async def insert_bodies(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """A batch of rows through SQLAlchemy (the in-memory database's log sink)."""
    if rows:
        await conn.execute(dialect_insert(conn.dialect.name, RequestBody).on_conflict_do_nothing(), rows)


async def find_bodies(
    conn: AsyncConnection, inference_ids: list[str], *, account_id: int | None
) -> dict[str, dict[str, Any]]:
    """The stored bodies of these requests by id; only ``account_id``'s unless it is None (operators)."""
    if not inference_ids:
        return {}
    t = RequestBody
    q = select(
        t.inference_id, t.request, t.response, t.request_truncated, t.response_truncated, t.created_at
    ).where(t.inference_id.in_(inference_ids))
    if account_id is not None:
        q = q.where(t.account_id == account_id)
    return {r.inference_id: dict(r._mapping) for r in (await conn.execute(q)).all()}


async def sweep_bodies(conn: AsyncConnection, *, older_than: datetime) -> int:
    """Delete every body stored before ``older_than``; returns how many."""
    result = await conn.execute(delete(RequestBody).where(RequestBody.created_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)
