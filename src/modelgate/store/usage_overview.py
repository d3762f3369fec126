"""Usage and spend across every account (the operator console's Usage page): requests, tokens and
credits charged per day and account, from the request log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account, RequestLog


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date
    account_id: int
    email: str
    requests: int
    errors: int
    tokens: int
    credits: int


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


async def usage_by_day_and_account(
    conn: AsyncConnection, *, since: datetime, until: datetime
) -> list[DayUsage]:
    day = func.date(RequestLog.created_at)
    query = (
        select(
            day.label("day"),
            RequestLog.account_id,
            func.coalesce(func.max(Account.email), "deleted account").label("email"),
            func.count().label("requests"),
            func.sum(case((RequestLog.status != "success", 1), else_=0)).label("errors"),
            func.sum(RequestLog.prompt_tokens + RequestLog.completion_tokens).label("tokens"),
            func.sum(RequestLog.credits).label("credits"),
        )
        .outerjoin(Account, Account.id == RequestLog.account_id)
        .where(RequestLog.created_at >= since, RequestLog.created_at < until)
        .group_by(day, RequestLog.account_id)
    )
    return [
        DayUsage(
            _as_date(r.day),
            int(r.account_id),
            str(r.email),
            int(r.requests),
            int(r.errors or 0),
            int(r.tokens or 0),
            int(r.credits or 0),
        )
        for r in await conn.execute(query)
    ]


async def balances(conn: AsyncConnection, *, account_ids: list[int]) -> dict[int, int]:
    if not account_ids:
        return {}
    query = select(Account.id, Account.balance_credits).where(Account.id.in_(account_ids))
    return {int(r.id): int(r.balance_credits) for r in await conn.execute(query)}
