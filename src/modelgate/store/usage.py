"""Usage and logs on the data floor: every read of ``request_logs`` (the service API's
``/v2/usage…`` and ``/v2/logs``, OpenAI's Admin API ``/organization/usage/…``, the Billing page, its
CSV exports, the request detail page; the operator console's in ``store/usage_console.py``), through
one filter (``LogFilter``) and one set of queries. Rows are written by ``store/log_sink.py``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, or_, select

from modelgate.store.db import Conn
from modelgate.store.organisations import in_keys_of
from modelgate.store.schema import Account, ApiKey, LedgerEntry, RequestLog


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which request rows: each field set narrows them (None / empty: no condition)."""

    account_id: int | None = None
    key_id: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    through: datetime | None = None  # inclusive (the service API's window end)
    project_id: int | None = None  # the keys of one project
    member_id: int | None = None  # the keys of one member
    models: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()  # success | error
    origin: str | None = None
    client_request_id: str | None = None
    inference_id: str | None = None
    # Either id (the Billing page's lookup): every other filter but the account is ignored.
    request_id: str | None = None
    # OpenAI's Admin API filters (any of the values): projects, members (users), keys, doors, and
    # rows whose per-use counts (``uses``) name ``use``.
    project_ids: tuple[int, ...] = ()
    member_ids: tuple[int, ...] = ()
    key_ids: tuple[int, ...] = ()
    doors: tuple[str, ...] = ()
    use: str | None = None


def _where(f: LogFilter) -> list[Any]:
    conds: list[Any] = []
    if f.account_id is not None:
        conds.append(RequestLog.account_id == f.account_id)
    if f.request_id:
        by_id = or_(RequestLog.inference_id == f.request_id, RequestLog.client_request_id == f.request_id)
        return [*conds, by_id]
    if f.key_id is not None:
        conds.append(RequestLog.key_id == f.key_id)
    conds += in_keys_of(RequestLog.key_id, project_id=f.project_id, member_id=f.member_id)
    if f.since is not None:
        conds.append(RequestLog.created_at >= f.since)
    if f.until is not None:
        conds.append(RequestLog.created_at < f.until)
    if f.through is not None:
        conds.append(RequestLog.created_at <= f.through)
    if f.models:
        conds.append(RequestLog.model.in_(sorted(set(f.models))))
    if f.statuses:
        conds.append(RequestLog.status.in_(f.statuses))
    if f.origin is not None:
        conds.append(RequestLog.origin == f.origin)
    if f.client_request_id is not None:
        conds.append(RequestLog.client_request_id == f.client_request_id)
    if f.inference_id is not None:
        conds.append(RequestLog.inference_id == f.inference_id)
    conds += _key_sets(RequestLog.key_id, f.project_ids, f.member_ids, f.key_ids)
    if f.doors:
        conds.append(RequestLog.door.in_(sorted(set(f.doors))))
    if f.use is not None:
        conds.append(RequestLog.uses.like(f'%"{f.use}"%'))
    return conds


def _key_sets(
    key_column: Any, project_ids: Sequence[int], member_ids: Sequence[int], key_ids: Sequence[int]
) -> list[Any]:
    conds: list[Any] = []
    if key_ids:
        conds.append(key_column.in_(sorted(set(key_ids))))
    if project_ids:
        conds.append(key_column.in_(select(ApiKey.id).where(ApiKey.project_id.in_(sorted(set(project_ids))))))
    if member_ids:
        conds.append(key_column.in_(select(ApiKey.id).where(ApiKey.member_id.in_(sorted(set(member_ids))))))
    return conds


# -- logs ---------------------------------------------------------------------------------------


async def log_page(conn: Conn, f: LogFilter, *, limit: int, offset: int = 0) -> list[Any]:
    """Request rows, newest first (ties by request id), every column."""
    q = (
        select(RequestLog)
        .where(*_where(f))
        .order_by(RequestLog.created_at.desc(), RequestLog.inference_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await conn.execute(q)).all())


async def log_count(conn: Conn, f: LogFilter) -> int:
    q = select(func.count()).select_from(RequestLog).where(*_where(f))
    return int((await conn.execute(q)).scalar() or 0)


MAX_FOUND = 20


async def find_requests(conn: Conn, wanted: str, *, account_id: int | None) -> list[dict[str, Any]]:
    """The rows whose request id or client request id is ``wanted`` (``LogFilter.request_id``),
    newest first, at most ``MAX_FOUND``, with the account's email and the key's name; only
    ``account_id``'s rows unless it is None (operators). The request detail page and the console's
    lookup (by the ``x-inference-id`` a response carried, or the caller's ``X-Client-Request-Id``)."""
    if not wanted:
        return []
    q = (
        select(RequestLog, Account.email, ApiKey.name.label("key_name"))
        .outerjoin(Account, Account.id == RequestLog.account_id)
        .outerjoin(ApiKey, ApiKey.id == RequestLog.key_id)
        .where(*_where(LogFilter(account_id=account_id, request_id=wanted)))
        .order_by(RequestLog.created_at.desc())
        .limit(MAX_FOUND)
    )
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]


async def logged_models(conn: Conn, *, account_id: int) -> list[str]:
    """Every model name in the account's request rows, sorted."""
    q = select(RequestLog.model).where(RequestLog.account_id == account_id).distinct()
    return sorted((await conn.execute(q)).scalars().all())


# -- spend --------------------------------------------------------------------------------------

_SPENT = func.coalesce(func.sum(RequestLog.credits), 0)
_CHARGED = func.sum(case((RequestLog.credits > 0, 1), else_=0))
# What the spend is made of (the price sheet's categories, docs/pricing.md), per model.
_CATEGORY_SUMS = [
    func.coalesce(func.sum(col), 0)
    for col in (
        RequestLog.prompt_tokens,
        RequestLog.completion_tokens,
        RequestLog.cached_tokens,
        RequestLog.cache_write_5m_tokens,
        RequestLog.cache_write_1h_tokens,
        RequestLog.reasoning_tokens,
        RequestLog.audio_tokens,
        RequestLog.overage_credits,
        case((RequestLog.tier > 0, 1), else_=0),
    )
]


async def spend_total(conn: Conn, f: LogFilter) -> tuple[int, int]:
    """``(credits spent, requests charged)``."""
    total = (await conn.execute(select(_SPENT, _CHARGED).where(*_where(f)))).one()
    return int(total[0]), int(total[1] or 0)


async def spend_by_model(conn: Conn, f: LogFilter) -> list[tuple[Any, ...]]:
    """Per model with a charge: ``(model, credits, requests, input, output, cache read, cache
    write 5m, cache write 1h, reasoning, audio, overage credits, requests above the base tier)``."""
    q = (
        select(RequestLog.model, _SPENT, func.count(), *_CATEGORY_SUMS)
        .where(*_where(f), RequestLog.credits > 0)
        .group_by(RequestLog.model)
    )
    return [tuple(r) for r in (await conn.execute(q)).all()]


async def spend_groups(
    conn: Conn, f: LogFilter, *, day_ends: list[datetime], by_day: bool, by_model: bool
) -> list[tuple[Any, ...]]:
    """Per (day index, model) as asked: ``([day], [model], credits, input, output, requests,
    charged, succeeded)``. Day ``i`` ends at ``day_ends[i]``; rows after the last end are in day
    ``len(day_ends)``."""
    # Rows are numbered by local day in a subquery (a CASE over the day boundaries, at most 93), so
    # the outer GROUP BY names a plain column on both SQLite and PostgreSQL.
    whens = [(RequestLog.created_at < end, i) for i, end in enumerate(day_ends)]
    bucket = case(*whens, else_=len(day_ends)) if whens else case((RequestLog.credits < 0, 0), else_=0)
    sub = (
        select(
            bucket.label("bucket"),
            RequestLog.model,
            RequestLog.credits,
            RequestLog.prompt_tokens,
            RequestLog.completion_tokens,
            RequestLog.status,
        )
        .where(*_where(f))
        .subquery()
    )
    keys = ([sub.c.bucket] if by_day else []) + ([sub.c.model] if by_model else [])
    q = select(
        *keys,
        func.coalesce(func.sum(sub.c.credits), 0),
        func.coalesce(func.sum(sub.c.prompt_tokens), 0),
        func.coalesce(func.sum(sub.c.completion_tokens), 0),
        func.count(),
        func.sum(case((sub.c.credits > 0, 1), else_=0)),
        func.sum(case((sub.c.status == "success", 1), else_=0)),
    ).group_by(*keys)
    return [tuple(r) for r in (await conn.execute(q)).all()]


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


async def usage_by_day(conn: Conn, f: LogFilter) -> list[dict[str, Any]]:
    """Requests, tokens and credits per (UTC day, model, key) (all statuses)."""
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
        .where(*_where(f))
        .group_by(day, RequestLog.model, RequestLog.key_id)
    )
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


GROUPS = ("project", "member", "key", "model")


async def usage_by_group(conn: Conn, f: LogFilter, *, by: str) -> list[tuple[date, Any, int, int, int]]:
    """Requests, tokens and credits per (UTC day, ``by``): a project id, a member (account) id, a
    key id (None: no key) or a model (the organisation usage page and its CSV export)."""
    column = {
        "project": ApiKey.project_id,
        "member": ApiKey.member_id,
        "key": RequestLog.key_id,
        "model": RequestLog.model,
    }[by]
    day = func.date(RequestLog.created_at)
    q = (
        select(
            day.label("day"),
            column.label("grp"),
            func.count().label("requests"),
            func.sum(RequestLog.prompt_tokens + RequestLog.completion_tokens).label("tokens"),
            func.sum(RequestLog.credits).label("credits"),
        )
        .select_from(RequestLog)
        .outerjoin(ApiKey, ApiKey.id == RequestLog.key_id)
        .where(*_where(f))
        .group_by(day, column)
    )
    return [
        (_as_date(r.day), r.grp, int(r.requests), int(r.tokens or 0), int(r.credits or 0))
        for r in (await conn.execute(q)).all()
    ]


# -- OpenAI's Admin API: usage and costs in time buckets ------------------------------------------

# What a usage or cost row may be grouped by (OpenAI's ``group_by`` names; ``door`` and ``uses``:
# which endpoint, and the per-use counts, read by the caller to count images, characters, seconds).
USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model", "door", "uses")
COST_GROUPS = ("project_id", "api_key_id", "line_item")


def _epoch(conn: Conn, column: Any) -> Any:
    """A timestamp column as whole Unix seconds, in SQL."""
    if conn.dialect.name == "sqlite":
        return cast(func.strftime("%s", column), BigInteger)
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


async def usage_buckets(
    conn: Conn, f: LogFilter, *, start: int, width: int, group_by: Sequence[str]
) -> list[dict[str, Any]]:
    """Successful requests per (time bucket, group), grouped in SQL: bucket ``i`` covers
    ``[start + i*width, start + (i+1)*width)`` (Unix seconds; ``f.since``/``f.until`` bound the
    rows). Each row: ``bucket``, the ``group_by`` columns, ``requests``, ``input``, ``output``,
    ``cached``, ``cache_write`` and ``audio`` tokens."""
    key = ApiKey.__table__.alias("k")
    columns = {
        "project_id": key.c.project_id,
        "user_id": key.c.member_id,
        "api_key_id": RequestLog.key_id,
        "model": RequestLog.model,
        "door": RequestLog.door,
        "uses": RequestLog.uses,
    }
    sub = (
        select(
            ((_epoch(conn, RequestLog.created_at) - start) // width).label("bucket"),
            *(columns[g].label(g) for g in group_by),
            RequestLog.prompt_tokens,
            RequestLog.completion_tokens,
            RequestLog.cached_tokens,
            (RequestLog.cache_write_5m_tokens + RequestLog.cache_write_1h_tokens).label("cache_write"),
            RequestLog.audio_tokens,
        )
        .select_from(RequestLog.__table__.outerjoin(key, key.c.id == RequestLog.key_id))
        .where(*_where(f), RequestLog.status == "success")
        .subquery()
    )
    keys = [sub.c.bucket, *(sub.c[g] for g in group_by)]
    q = select(
        *keys,
        func.count().label("requests"),
        *(
            func.coalesce(func.sum(sub.c[c]), 0).label(name)
            for c, name in (
                ("prompt_tokens", "input"),
                ("completion_tokens", "output"),
                ("cached_tokens", "cached"),
                ("cache_write", "cache_write"),
                ("audio_tokens", "audio"),
            )
        ),
    ).group_by(*keys)
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]


async def cost_buckets(
    conn: Conn,
    *,
    org_id: int,
    since: datetime,
    until: datetime,
    start: int,
    width: int,
    project_ids: Sequence[int] = (),
    key_ids: Sequence[int] = (),
    group_by: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The ledger's model-usage charges (kind ``charge``) per (time bucket, group), grouped in SQL:
    ``bucket``, the ``group_by`` columns (``line_item``: the charge's model) and ``credits`` (spent,
    positive)."""
    key = ApiKey.__table__.alias("k")
    columns = {
        "project_id": key.c.project_id,
        "api_key_id": LedgerEntry.key_id,
        "line_item": LedgerEntry.model,
    }
    sub = (
        select(
            ((_epoch(conn, LedgerEntry.created_at) - start) // width).label("bucket"),
            *(columns[g].label(g) for g in group_by),
            LedgerEntry.credits,
        )
        .select_from(LedgerEntry.__table__.outerjoin(key, key.c.id == LedgerEntry.key_id))
        .where(
            LedgerEntry.account_id == org_id,
            LedgerEntry.kind == "charge",
            LedgerEntry.created_at >= since,
            LedgerEntry.created_at < until,
            *_key_sets(LedgerEntry.key_id, project_ids, (), key_ids),
        )
        .subquery()
    )
    keys = [sub.c.bucket, *(sub.c[g] for g in group_by)]
    q = select(*keys, (-func.coalesce(func.sum(sub.c.credits), 0)).label("credits")).group_by(*keys)
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]
