"""The operator console's reads of ``request_logs``: usage and spend per day and account across
every account (its Usage page), and the recent health per provider or model (its Status page).
Through ``store/usage.py``'s one filter (``LogFilter``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, or_, select

from modelgate.store.db import Conn
from modelgate.store.schema import Account, RequestLog
from modelgate.store.usage import LogFilter, _as_date, _where


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date
    account_id: int
    email: str
    requests: int
    errors: int
    tokens: int
    credits: int


async def usage_by_day_and_account(conn: Conn, *, since: datetime, until: datetime) -> list[DayUsage]:
    """Requests (failed ones too), tokens and credits per (UTC day, account) across every account,
    with the account's email (the console's Usage page)."""
    day = func.date(RequestLog.created_at)
    q = (
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
        .where(*_where(LogFilter(since=since, until=until)))
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
        for r in (await conn.execute(q)).all()
    ]


async def recent_stats(conn: Conn, *, by: str, since: datetime) -> list[Any]:
    """Per ``provider`` or ``model`` (``by``) since ``since``: ``name``, ``requests``, ``ok``
    (succeeded), ``latency`` (mean of the successful), ``overage`` (credits) and ``over`` (requests)."""
    column = {"provider": RequestLog.provider, "model": RequestLog.model}[by]
    ok = RequestLog.status == "success"
    q = (
        select(
            column.label("name"),
            func.count().label("requests"),
            func.sum(case((ok, 1), else_=0)).label("ok"),
            func.avg(case((ok, RequestLog.latency_ms), else_=None)).label("latency"),
            func.coalesce(func.sum(RequestLog.overage_credits), 0).label("overage"),
            func.sum(case((RequestLog.overage_credits > 0, 1), else_=0)).label("over"),
        )
        .where(
            RequestLog.created_at >= since,
            column.is_not(None),
            # The caller's own refusals (scope, credits, limits, bad requests, stopped
            # replies: 4xx) say nothing about a provider's health.
            or_(RequestLog.http_status < 400, RequestLog.http_status >= 500),
        )
        .group_by(column)
    )
    return list((await conn.execute(q)).all())
