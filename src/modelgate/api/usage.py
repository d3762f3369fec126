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
from starlette.responses import Response

from modelgate.api.service_query import Window, int_param, json_response, resolve_key, single, time_window
from modelgate.errors import InvalidRequestError
from modelgate.httpkit.contract import WINDOW, operation, query
from modelgate.httpkit.deps import CurrentKey, StateDep, pending_writes_flushed, text_parameters
from modelgate.store.db import Conn
from modelgate.store.usage import LogFilter, log_count, log_page, spend_by_model, spend_groups, spend_total
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


def _window(key_id: int, window: Window, **narrower: Any) -> LogFilter:
    return LogFilter(key_id=key_id, since=window.start, through=window.end, **narrower)


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
        spent, charged = await spend_total(conn, _window(target.key_id, window))
        body: dict[str, Any] = {
            "api_key_prefix": target.requested_prefix,
            "start": iso(window.start),
            "end": iso(window.end),
            "spend": usd(spent),
            "currency": "USD",
            "requests": charged,
        }
        if detail:
            rows = await spend_by_model(conn, _window(target.key_id, window))
            models = [
                {"model": m, "spend": usd(int(s)), "requests": int(n), **_categories(list(rest))}
                for m, s, n, *rest in rows
            ]
            body["models"] = sorted(models, key=lambda r: (-r["spend"], r["model"]))
            if group_by is not None:
                assert tz is not None
                body["groups"] = await _groups(conn, target.key_id, window, GROUP_BY[group_by], tz)
    return json_response(body)


async def _groups(
    conn: Conn, key_id: int, window: Window, by: tuple[str, ...], tz: zoneinfo.ZoneInfo
) -> list[dict[str, Any]]:
    first = window.start.astimezone(tz).date()
    last = window.end.astimezone(tz).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    rows = await spend_groups(
        conn,
        _window(key_id, window),
        day_ends=[_midnight(d + timedelta(days=1), tz) for d in days[:-1]],
        by_day="day" in by,
        by_model="model" in by,
    )
    out: list[dict[str, Any]] = []
    for row in rows:
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
        names = set()
        for m in models:  # exact: an id or an alias; a comma list is one (unknown) name
            spec = state.catalog.find(m)
            names.add(spec.id if spec is not None and "," not in m else m)
        f = _window(
            target.key_id,
            window,
            models=tuple(sorted(names)),
            statuses=tuple("success" if s == "succeeded" else "error" for s in statuses),
            origin=origin,
            client_request_id=crid,
            inference_id=inference_id,
        )
        total = await log_count(conn, f)
        rows = await log_page(conn, f, limit=limit, offset=offset)
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
