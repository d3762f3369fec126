"""The Billing page: balance and how to get credits, usage chart (per day and model) over a date
range, breakdowns by model and by key, request logs (failed requests included, lookup by request
id) and transactions. The CSV exports of the same rows are in ``exports``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup
from starlette.responses import JSONResponse, Response

from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.store import transactions as ledger_rows
from modelgate.store import usage as request_logs
from modelgate.store.accounts import balance as account_balance
from modelgate.store.keys import key_labels
from modelgate.store.organisations import org_members, visible_projects
from modelgate.store.response_cache import cache_savings
from modelgate.store.site_settings import load_site_settings
from modelgate.web.billing_data import ORIGINS, STATUSES, parse_filter
from modelgate.web.charts import bar, colors, day_range, money, number, stacked_bars, swatch
from modelgate.web.render import render
from modelgate.web.sessions import CurrentUser

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

PAGE_SIZE = 20
METRICS = {"requests": "Requests", "tokens": "Tokens", "usd": "Spend (USD)"}


def _int(value: str | None, default: int = 1) -> int:
    try:
        return min(max(1, int(value or default)), 100_000)
    except ValueError:
        return default


def _value(row: dict[str, Any], metric: str) -> float:
    if metric == "usd":
        return float(row["credits"]) / CREDITS_PER_USD
    return float(row[metric])


def _breakdown(usage: list[dict[str, Any]], by: str, metric: str) -> list[dict[str, Any]]:
    groups: dict[Any, dict[str, Any]] = {}
    for r in usage:
        g = groups.setdefault(r[by], {"name": r[by], "requests": 0, "tokens": 0, "credits": 0, "value": 0.0})
        g["requests"] += r["requests"]
        g["tokens"] += r["tokens"]
        g["credits"] += r["credits"]
        g["value"] += _value(r, metric)
    out = sorted(groups.values(), key=lambda g: (-g["value"], str(g["name"])))
    top = max((g["value"] for g in out), default=0) or 1
    for g in out:
        g["pct"] = round(100 * g["value"] / top, 1)
    return out


@router.get("/app/billing")
async def billing_page(request: Request, user: CurrentUser) -> Response:
    q = request.query_params
    metric = q.get("metric") or "requests"
    if metric not in METRICS:
        metric = "requests"
    tx_page, log_page = _int(q.get("tx_page")), _int(q.get("log_page"))
    today = datetime.now(UTC).date()
    f = parse_filter(q, today)
    state = app_state(request)
    async with state.db.engine.connect() as conn:
        balance = await account_balance(conn, account_id=user.org_id) or 0
        site = await load_site_settings(conn, state.settings)
        keys = await key_labels(conn, account_id=user.org_id)
        projects = {
            p.id: p.name for p in await visible_projects(conn, org_id=user.org_id, account_id=user.account_id)
        }
        members = {m[0]: m[1] for m in await org_members(conn, org_id=user.org_id)}
        if f.project_id not in projects:
            f.project_id = None
        if f.member_id not in members:
            f.member_id = None
        if f.key_id is not None and f.key_id not in keys:
            f.key_id = None
        usage = await request_logs.usage_by_day(conn, f.usage(user.org_id))
        cache_hits, cache_saved = await cache_savings(conn, user.org_id, f.since, f.until)
        txs = await ledger_rows.transactions(
            conn, f.transactions(user.org_id), limit=PAGE_SIZE + 1, offset=(tx_page - 1) * PAGE_SIZE
        )
        logs = await request_logs.log_page(
            conn, f.logs(user.org_id), limit=PAGE_SIZE + 1, offset=(log_page - 1) * PAGE_SIZE
        )
        log_models = await request_logs.logged_models(conn, account_id=user.org_id)

    per_model = _breakdown(usage, "model", metric)
    palette = colors([g["name"] for g in per_model])
    for g in per_model:
        g["color"] = palette[g["name"]]
        g["bar"] = Markup(bar(g["pct"], g["color"], label=f"{g['name']}: {g['pct']}% of the largest"))
        g["swatch"] = Markup(swatch(g["color"]))
    per_key = _breakdown(usage, "key_id", metric)
    for g in per_key:
        g["label"] = keys.get(g["name"], "deleted key") if g["name"] is not None else "no key"
        g["bar"] = Markup(bar(g["pct"], "#3b5bdb", label=f"{g['label']}: {g['pct']}% of the largest"))
    per_day: dict[tuple[date, str], float] = {}
    for r in usage:
        per_day[(r["day"], r["model"])] = per_day.get((r["day"], r["model"]), 0.0) + _value(r, metric)
    days = day_range(f.start, f.end)
    title = f"{METRICS[metric]} per day and model, {f.start:%b %d} to {f.end:%b %d, %Y}"
    fmt = money if metric == "usd" else number
    counts = metric != "usd"
    charts = [
        # Built from escaped values only (charts.py escapes every label).
        Markup(stacked_bars(days, per_day, palette, title=title, fmt=fmt, integer=counts)),
        Markup(stacked_bars(days, per_day, palette, title=title, fmt=fmt, integer=counts, width=360)),
    ]

    def link(**changes: Any) -> str:
        params = {**f.query(), "metric": metric}
        params.update({k: str(v) for k, v in changes.items()})
        return str(request.url.replace_query_params(**{k: v for k, v in params.items() if v}))

    return render(
        request,
        "billing.html",
        {
            "balance": balance,
            "site": site,
            "charts": charts,
            "per_model": per_model,
            "per_key": per_key,
            "metric": metric,
            "metrics": METRICS,
            "f": f,
            "export_query": f.query(),
            "total_requests": sum(r["requests"] for r in usage),
            "total_credits": sum(r["credits"] for r in usage),
            "cache_hits": cache_hits,
            "cache_saved": cache_saved,
            "txs": [dict(r._mapping) for r in txs[:PAGE_SIZE]],
            "tx_page": tx_page,
            "tx_more": len(txs) > PAGE_SIZE,
            "logs": [dict(r._mapping) for r in logs[:PAGE_SIZE]],
            "log_page": log_page,
            "log_more": len(logs) > PAGE_SIZE,
            "log_models": log_models,
            "keys": keys,
            "projects": projects if len(projects) > 1 else {},
            "members": members if len(members) > 1 else {},
            "statuses": STATUSES,
            "origins": ORIGINS,
            "link": link,
            "page": "billing",
        },
    )


@router.get("/app/balance")
async def balance_json(request: Request, user: CurrentUser) -> Response:
    """The signed-in account's balance, for the playground (JSON)."""
    async with app_state(request).db.engine.connect() as conn:
        credits = await account_balance(conn, account_id=user.org_id) or 0
    return JSONResponse(
        {
            "credits": int(credits),
            "usd": int(credits) / CREDITS_PER_USD,
            "display": money(int(credits) / CREDITS_PER_USD),
        },
        headers={"Cache-Control": "no-store"},
    )
