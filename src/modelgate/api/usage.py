"""Spend of a key and its request rows (api-key-usage.md, usage-logs.md; specs usage-*.json, logs-v2.json).

``GET /v2/usage`` (flat total), ``/v2/usage/detail`` (per-model breakdown, optional ``groups`` by
``day``, ``model`` or ``day,model`` with ``tz``) and ``/v2/logs`` (one row per request, failed ones
with zero cost). All read the ``request_logs`` table that the gateway writes in batches, so a
request shows up there a fraction of a second after it ended. Time window and key selection rules
live in ``api/service_query.py``.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import case, func, select
from starlette.responses import Response

from modelgate.api.service_query import Window, int_param, json_response, resolve_key, single, time_window
from modelgate.errors import InvalidRequestError
from modelgate.httpkit.contract import WINDOW, operation, query
from modelgate.httpkit.deps import CurrentKey, StateDep, pending_writes_flushed, text_parameters
from modelgate.store.schema import RequestLog
from modelgate.wire.service import iso, log_view, usd

router = APIRouter(tags=["usage"], dependencies=[Depends(text_parameters), Depends(pending_writes_flushed)])

GROUP_BY = {"day": ("day",), "model": ("model",), "day,model": ("day", "model")}
MAX_MODEL_FILTERS = 50


@functools.cache
def canonical_zones() -> frozenset[str]:
    """IANA zone names (``Z`` lines of tzdata.zi, not backward links), plus ``UTC``."""
    candidates = [Path(p) / "tzdata.zi" for p in zoneinfo.TZPATH]
    try:
        import tzdata

        candidates.append(Path(tzdata.__file__).parent / "zoneinfo" / "tzdata.zi")
    except ImportError:  # pragma: no cover
        pass
    for path in candidates:
        if path.is_file():
            names = {line.split()[1] for line in path.read_text().splitlines() if line.startswith("Z ")}
            return frozenset(names | {"UTC"})
    return frozenset(zoneinfo.available_timezones() | {"UTC"})  # pragma: no cover


def _zone(request: Request) -> zoneinfo.ZoneInfo:
    name = single(request, "tz")
    if name is None:
        return zoneinfo.ZoneInfo("UTC")
    if name not in canonical_zones():
        raise InvalidRequestError(
            f"tz must be a canonical IANA time zone name such as Europe/Berlin or UTC, not {name!r}",
            param="tz",
        )
    return zoneinfo.ZoneInfo(name)


def _midnight(d: date, tz: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=tz).astimezone(zoneinfo.ZoneInfo("UTC"))


def _in_window(q: Any, key_id: int, window: Window) -> Any:
    return q.where(
        RequestLog.key_id == key_id,
        RequestLog.created_at >= window.start,
        RequestLog.created_at <= window.end,
    )


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


def _categories(sums: list[Any]) -> dict[str, Any]:
    inp, out, read, w5, w1h, reasoning, audio, overage, tiered = (int(v or 0) for v in sums)
    return {
        "tokens": {
            "input": inp,
            "output": out,
            "total": inp + out,
            "cache_read": read,
            "cache_write_5m": w5,
            "cache_write_1h": w1h,
            "reasoning": reasoning,
            "audio": audio,
        },
        "requests_above_base_tier": tiered,
        "overage": {"usd": usd(overage), "credits": overage},
    }


_SPENT = func.coalesce(func.sum(RequestLog.credits), 0)


async def _summary(request: Request, ident: CurrentKey, state: StateDep, *, detail: bool) -> Response:
    if not detail:
        for name in ("group_by", "tz"):
            if name in request.query_params:
                raise InvalidRequestError(
                    f"{name} is accepted on /v2/usage/detail only; /v2/usage returns a flat total", param=name
                )
    window = time_window(request)
    group_by = single(request, "group_by") if detail else None
    if group_by is not None and group_by not in GROUP_BY:
        raise InvalidRequestError("group_by must be day, model or day,model", param="group_by")
    tz = _zone(request) if detail else None
    async with state.db.engine.connect() as conn:
        target = await resolve_key(request, ident, conn)
        total = (await conn.execute(_in_window(select(_SPENT, _CHARGED), target.key_id, window))).one()
        body: dict[str, Any] = {
            "api_key_prefix": target.requested_prefix,
            "start": iso(window.start),
            "end": iso(window.end),
            "spend": usd(int(total[0])),
            "currency": "USD",
            "requests": int(total[1] or 0),
        }
        if detail:
            q = _in_window(
                select(RequestLog.model, _SPENT, func.count(), *_CATEGORY_SUMS), target.key_id, window
            )
            q = q.where(RequestLog.credits > 0).group_by(RequestLog.model)
            rows = (await conn.execute(q)).all()
            models = [
                {"model": m, "spend": usd(int(s)), "requests": int(n), **_categories(rest)}
                for m, s, n, *rest in rows
            ]
            body["models"] = sorted(models, key=lambda r: (-r["spend"], r["model"]))
            if group_by is not None:
                assert tz is not None
                body["groups"] = await _groups(conn, target.key_id, window, GROUP_BY[group_by], tz)
    return json_response(body)


async def _groups(
    conn: Any, key_id: int, window: Window, by: tuple[str, ...], tz: zoneinfo.ZoneInfo
) -> list[dict[str, Any]]:
    # Rows are numbered by local day in a subquery (a CASE over the day boundaries, at most 93), so
    # the outer GROUP BY names a plain column on both SQLite and PostgreSQL.
    first = window.start.astimezone(tz).date()
    last = window.end.astimezone(tz).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    whens = [
        (RequestLog.created_at < _midnight(d + timedelta(days=1), tz), i) for i, d in enumerate(days[:-1])
    ]
    bucket = case(*whens, else_=len(days) - 1) if whens else case((RequestLog.credits < 0, 0), else_=0)
    sub = _in_window(
        select(
            bucket.label("bucket"),
            RequestLog.model,
            RequestLog.credits,
            RequestLog.prompt_tokens,
            RequestLog.completion_tokens,
            RequestLog.status,
        ),
        key_id,
        window,
    ).subquery()
    keys = ([sub.c.bucket] if "day" in by else []) + ([sub.c.model] if "model" in by else [])
    q = select(
        *keys,
        func.coalesce(func.sum(sub.c.credits), 0),
        func.coalesce(func.sum(sub.c.prompt_tokens), 0),
        func.coalesce(func.sum(sub.c.completion_tokens), 0),
        func.count(),
        func.sum(case((sub.c.credits > 0, 1), else_=0)),
        func.sum(case((sub.c.status == "success", 1), else_=0)),
    ).group_by(*keys)
    out: list[dict[str, Any]] = []
    for row in (await conn.execute(q)).all():
        vals = list(row)
        group: dict[str, Any] = {}
        if "day" in by:
            group["day"] = days[int(vals.pop(0))].isoformat()
        if "model" in by:
            group["model"] = vals.pop(0)
        spent, inp, outp, n, charged, ok = (int(v or 0) for v in vals)
        group["spend"] = usd(spent)
        group["tokens"] = {"input": inp, "output": outp, "total": inp + outp}
        group["requests"] = {"total": n, "charged": charged, "succeeded": ok, "failed": n - ok}
        out.append(group)
    out.sort(key=lambda g: (g.get("day", ""), -g["spend"], g.get("model", "")))
    return out


@router.get("/v2/usage", openapi_extra=operation(params=WINDOW))
async def usage(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    return await _summary(request, ident, state, detail=False)


@router.get(
    "/v2/usage/detail",
    openapi_extra=operation(
        params=[
            *WINDOW,
            query("group_by", {"enum": ["day", "model", "day,model"]}),
            query("tz", {"type": "string", "example": "Europe/Berlin"}, description="an IANA time zone"),
        ]
    ),
)
async def usage_detail(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    return await _summary(request, ident, state, detail=True)


@router.get(
    "/v2/logs",
    openapi_extra=operation(
        params=[
            *WINDOW,
            query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "example": 50}),
            query("offset", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "example": 0}),
            query("model", many=True, description="an id or alias; repeat for several"),
            query("status", {"enum": ["succeeded", "failed"]}, many=True),
            query("origin", {"enum": ["api", "playground"]}),
            query("client_request_id"),
            query("inference_id"),
        ]
    ),
)
async def logs(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    window = time_window(request)
    limit = int_param(request, "limit", default=50, low=1, high=100)
    offset = int_param(request, "offset", default=0, low=0)
    models = request.query_params.getlist("model")
    if len(models) > MAX_MODEL_FILTERS:
        raise InvalidRequestError(f"At most {MAX_MODEL_FILTERS} model values", param="model")
    statuses = request.query_params.getlist("status")
    for s in statuses:
        if s not in ("succeeded", "failed"):
            raise InvalidRequestError(
                f"status must be succeeded or failed (repeat the parameter for both), not {s!r}",
                param="status",
            )
    origin = single(request, "origin")
    if origin is not None and origin not in ("api", "playground"):
        raise InvalidRequestError("origin must be api or playground", param="origin")
    crid, inference_id = single(request, "client_request_id"), single(request, "inference_id")
    async with state.db.engine.connect() as conn:
        target = await resolve_key(request, ident, conn)
        conds: list[Any] = []
        if models:
            names = set()
            for m in models:  # exact: an id or an alias; a comma list is one (unknown) name
                spec = state.catalog.find(m)
                names.add(spec.id if spec is not None and "," not in m else m)
            conds.append(RequestLog.model.in_(sorted(names)))
        if statuses:
            conds.append(
                RequestLog.status.in_(["success" if s == "succeeded" else "error" for s in statuses])
            )
        if origin is not None:
            conds.append(RequestLog.origin == origin)
        if crid is not None:
            conds.append(RequestLog.client_request_id == crid)
        if inference_id is not None:
            conds.append(RequestLog.inference_id == inference_id)
        total = (
            await conn.execute(_in_window(select(func.count()), target.key_id, window).where(*conds))
        ).scalar()
        q = _in_window(select(RequestLog), target.key_id, window).where(*conds)
        q = (
            q.order_by(RequestLog.created_at.desc(), RequestLog.inference_id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = (await conn.execute(q)).all()
    total = int(total or 0)
    return json_response(
        {
            "data": [log_view(r) for r in rows],
            "pagination": {
                "limit": limit,
                "offset": offset,
                "total": total,
                "has_more": offset + len(rows) < total,
            },
        }
    )
