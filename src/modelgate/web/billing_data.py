"""What the Billing page and its CSV exports read: one parsed filter, shared queries.

Every value comes from the query string and is validated here (dates within a bounded range, ids
that fit a column, ids of the signed-in account only); a bad value falls back to the default and
the page says so, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import QueryParams

from modelgate.store.organisations import in_keys_of
from modelgate.store.schema import ApiKey, LedgerEntry, PlaygroundKey, RequestLog

AnySelect: TypeAlias = Select[*tuple[Any, ...]]
DEFAULT_DAYS = 14
MAX_DAYS = 366
MIN_DATE, MAX_DATE = date(2000, 1, 1), date(2100, 12, 31)
STATUSES = ("success", "error")
ORIGINS = ("api", "playground")


@dataclass
class BillingFilter:
    start: date
    end: date  # inclusive
    model: str = ""
    status: str = ""
    origin: str = ""
    key_id: int | None = None
    project_id: int | None = None  # the keys of one project (organisations)
    member_id: int | None = None  # the keys of one member
    request_id: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def query(self) -> dict[str, str]:
        """The filter as query parameters (for links and export URLs)."""
        out = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        for name, value in (
            ("model", self.model),
            ("status", self.status),
            ("origin", self.origin),
            ("key", str(self.key_id) if self.key_id is not None else ""),
            ("project", str(self.project_id) if self.project_id is not None else ""),
            ("member", str(self.member_id) if self.member_id is not None else ""),
            ("request_id", self.request_id),
        ):
            if value:
                out[name] = value
        return out


def _date(raw: str | None, name: str, problems: list[str]) -> date | None:
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw.strip()[:10])
    except ValueError:
        problems.append(f"“{name}” must be a date like 2026-01-31; the default was used.")
        return None
    if not MIN_DATE <= value <= MAX_DATE:
        problems.append(f"“{name}” must be between {MIN_DATE} and {MAX_DATE}; the default was used.")
        return None
    return value


def _text(raw: str | None, limit: int) -> str:
    value = (raw or "").strip()
    return "" if len(value) > limit or any(ord(c) < 32 for c in value) else value


def parse_filter(params: QueryParams, today: date) -> BillingFilter:
    problems: list[str] = []
    end = _date(params.get("to"), "to", problems) or today
    start = _date(params.get("from"), "from", problems) or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
    if (end - start).days + 1 > MAX_DAYS:
        start = end - timedelta(days=MAX_DAYS - 1)
        problems.append(f"A range is at most {MAX_DAYS} days; it was shortened.")
    key_raw = params.get("key") or ""
    key_id = int(key_raw) if key_raw.isdigit() and len(key_raw) <= 9 else None
    project_raw, member_raw = params.get("project") or "", params.get("member") or ""
    status = params.get("status") or ""
    origin = params.get("origin") or ""
    return BillingFilter(
        start=start,
        end=end,
        model=_text(params.get("model"), 200),
        status=status if status in STATUSES else "",
        origin=origin if origin in ORIGINS else "",
        key_id=key_id,
        project_id=int(project_raw) if project_raw.isdigit() and len(project_raw) <= 9 else None,
        member_id=int(member_raw) if member_raw.isdigit() and len(member_raw) <= 9 else None,
        request_id=_text(params.get("request_id"), 128),
        problems=problems,
    )


def logs_query(account_id: int, f: BillingFilter) -> AnySelect:
    q = select(RequestLog).where(RequestLog.account_id == account_id)
    if f.request_id:  # a lookup by id ignores the other filters
        return q.where(
            or_(RequestLog.inference_id == f.request_id, RequestLog.client_request_id == f.request_id)
        )
    q = q.where(RequestLog.created_at >= f.since, RequestLog.created_at < f.until)
    if f.model:
        q = q.where(RequestLog.model == f.model)
    if f.status:
        q = q.where(RequestLog.status == f.status)
    if f.origin:
        q = q.where(RequestLog.origin == f.origin)
    if f.key_id is not None:
        q = q.where(RequestLog.key_id == f.key_id)
    return q.where(*in_keys_of(RequestLog.key_id, project_id=f.project_id, member_id=f.member_id))


def transactions_query(account_id: int, f: BillingFilter) -> AnySelect:
    query: AnySelect = select(
        LedgerEntry.id,
        LedgerEntry.created_at,
        LedgerEntry.kind,
        LedgerEntry.credits,
        LedgerEntry.description,
        LedgerEntry.model,
        LedgerEntry.key_id,
        LedgerEntry.reference_id,
    ).where(
        LedgerEntry.account_id == account_id,
        LedgerEntry.created_at >= f.since,
        LedgerEntry.created_at < f.until,
        *in_keys_of(LedgerEntry.key_id, project_id=f.project_id, member_id=f.member_id),
    )
    return query


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


async def usage_rows(conn: AsyncConnection, account_id: int, f: BillingFilter) -> list[dict[str, Any]]:
    """Requests, tokens and credits per (day, model, key) within the filter (all statuses)."""
    day = func.date(RequestLog.created_at)
    q = (
        select(
            day.label("day"),
            RequestLog.model,
            RequestLog.key_id,
            func.count().label("requests"),
            func.sum(RequestLog.prompt_tokens + RequestLog.completion_tokens).label("tokens"),
            func.sum(RequestLog.credits).label("credits"),
        )
        .where(
            RequestLog.account_id == account_id,
            RequestLog.created_at >= f.since,
            RequestLog.created_at < f.until,
        )
        .group_by(day, RequestLog.model, RequestLog.key_id)
    )
    if f.model:
        q = q.where(RequestLog.model == f.model)
    if f.origin:
        q = q.where(RequestLog.origin == f.origin)
    if f.key_id is not None:
        q = q.where(RequestLog.key_id == f.key_id)
    if f.status:
        q = q.where(RequestLog.status == f.status)
    q = q.where(*in_keys_of(RequestLog.key_id, project_id=f.project_id, member_id=f.member_id))
    return [
        {
            "day": _as_date(r.day),
            "model": r.model,
            "key_id": r.key_id,
            "requests": int(r.requests),
            "tokens": int(r.tokens or 0),
            "credits": int(r.credits or 0),
        }
        for r in (await conn.execute(q)).all()
    ]


async def account_keys(conn: AsyncConnection, account_id: int) -> dict[int, str]:
    """Every key of the account (deleted ones too: their requests stay in the logs) -> label."""
    playground = set(
        (await conn.execute(select(PlaygroundKey.key_id).where(PlaygroundKey.account_id == account_id)))
        .scalars()
        .all()
    )
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
