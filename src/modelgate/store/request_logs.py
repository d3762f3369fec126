"""Reading request-log rows one request at a time: the user's request detail and the operator's
lookup (by the ``x-inference-id`` a response carried, or the caller's ``X-Client-Request-Id``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account, ApiKey, RequestLog

MAX_FOUND = 20


async def find_requests(
    conn: AsyncConnection, wanted: str, *, account_id: int | None
) -> list[dict[str, Any]]:
    """The log rows whose request id or client request id is ``wanted``, newest first, with the
    account's email and the key's name; only ``account_id``'s rows unless it is None (operators)."""
    q = (
        select(RequestLog, Account.email, ApiKey.name.label("key_name"))
        .outerjoin(Account, Account.id == RequestLog.account_id)
        .outerjoin(ApiKey, ApiKey.id == RequestLog.key_id)
        .where(or_(RequestLog.inference_id == wanted, RequestLog.client_request_id == wanted))
        .order_by(RequestLog.created_at.desc())
        .limit(MAX_FOUND)
    )
    if account_id is not None:
        q = q.where(RequestLog.account_id == account_id)
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]
