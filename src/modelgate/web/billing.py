"""The Billing page: balance, usage chart (per day and per model), transactions and request logs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup
from sqlalchemy import func, select
from starlette.responses import Response

from modelgate.api.deps import app_state, pending_writes_flushed
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.store.schema import Account, LedgerEntry, RequestLog
from modelgate.web.charts import colors, last_days, stacked_bars
from modelgate.web.render import render
from modelgate.web.sessions import CurrentUser

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

PAGE_SIZE = 20
CHART_DAYS = 14
METRICS = {"requests": "Requests", "tokens": "Tokens", "usd": "Spend (USD)"}


def _int(value: str | None, default: int = 1) -> int:
    try:
        return max(1, int(value or default))
    except ValueError:
        return default


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


async def _usage(conn: Any, account_id: int, since: datetime) -> list[dict[str, Any]]:
    day = func.date(RequestLog.created_at)
    rows = (
        await conn.execute(
            select(
                day.label("day"),
                RequestLog.model,
                func.count().label("requests"),
                func.sum(RequestLog.prompt_tokens + RequestLog.completion_tokens).label("tokens"),
                func.sum(RequestLog.credits).label("credits"),
            )
            .where(RequestLog.account_id == account_id, RequestLog.created_at >= since)
            .group_by(day, RequestLog.model)
        )
    ).all()
    return [
        {
            "day": _as_date(r.day),
            "model": r.model,
            "requests": int(r.requests),
            "tokens": int(r.tokens or 0),
            "credits": int(r.credits or 0),
        }
        for r in rows
    ]


@router.get("/app/billing")
async def billing_page(request: Request, user: CurrentUser) -> Response:
    q = request.query_params
    metric = q.get("metric") or "requests"
    if metric not in METRICS:
        metric = "requests"
    tx_page, log_page = _int(q.get("tx_page")), _int(q.get("log_page"))
    f_model, f_status, f_origin = q.get("model", ""), q.get("status", ""), q.get("origin", "")
    today = datetime.now(UTC).date()
    since = datetime.combine(today - timedelta(days=CHART_DAYS - 1), datetime.min.time(), tzinfo=UTC)
    async with app_state(request).db.engine.connect() as conn:
        balance = (
            await conn.execute(select(Account.balance_credits).where(Account.id == user.account_id))
        ).scalar_one()
        usage = await _usage(conn, user.account_id, since)
        txs = (
            await conn.execute(
                select(
                    LedgerEntry.id,
                    LedgerEntry.kind,
                    LedgerEntry.credits,
                    LedgerEntry.description,
                    LedgerEntry.reference_id,
                    LedgerEntry.created_at,
                )
                .where(LedgerEntry.account_id == user.account_id)
                .order_by(LedgerEntry.id.desc())
                .limit(PAGE_SIZE + 1)
                .offset((tx_page - 1) * PAGE_SIZE)
            )
        ).all()
        log_q = select(RequestLog).where(RequestLog.account_id == user.account_id)
        if f_model:
            log_q = log_q.where(RequestLog.model == f_model)
        if f_status:
            log_q = log_q.where(RequestLog.status == f_status)
        if f_origin:
            log_q = log_q.where(RequestLog.origin == f_origin)
        logs = (
            await conn.execute(
                log_q.order_by(RequestLog.created_at.desc())
                .limit(PAGE_SIZE + 1)
                .offset((log_page - 1) * PAGE_SIZE)
            )
        ).all()
        log_models = (
            (
                await conn.execute(
                    select(RequestLog.model).where(RequestLog.account_id == user.account_id).distinct()
                )
            )
            .scalars()
            .all()
        )

    def value(row: dict[str, Any]) -> float:
        if metric == "usd":
            return float(row["credits"]) / CREDITS_PER_USD
        return float(row[metric])

    models = sorted(
        {r["model"] for r in usage}, key=lambda m: -sum(value(r) for r in usage if r["model"] == m)
    )
    palette = colors(models)
    per_day: dict[tuple[date, str], float] = {}
    for r in usage:
        per_day[(r["day"], r["model"])] = per_day.get((r["day"], r["model"]), 0.0) + value(r)
    per_model = [
        {
            "model": m,
            "color": palette[m],
            "requests": sum(r["requests"] for r in usage if r["model"] == m),
            "tokens": sum(r["tokens"] for r in usage if r["model"] == m),
            "credits": sum(r["credits"] for r in usage if r["model"] == m),
            "value": sum(value(r) for r in usage if r["model"] == m),
        }
        for m in models
    ]
    top = max((p["value"] for p in per_model), default=0) or 1
    for p in per_model:
        p["pct"] = round(100 * p["value"] / top, 1)
    chart = stacked_bars(
        last_days(today, CHART_DAYS),
        per_day,
        palette,
        title=f"{METRICS[metric]} per day and model, last {CHART_DAYS} days",
    )

    def link(**changes: Any) -> str:
        params = {k: v for k, v in q.items()}
        params.update({k: str(v) for k, v in changes.items()})
        return str(request.url.replace_query_params(**{k: v for k, v in params.items() if v}))

    return render(
        request,
        "billing.html",
        {
            "balance": balance,
            "balance_usd": balance / CREDITS_PER_USD,
            "chart": Markup(chart),  # built from escaped values only (charts.py escapes every label)
            "per_model": per_model,
            "metric": metric,
            "metrics": METRICS,
            "total_requests": sum(r["requests"] for r in usage),
            "total_credits": sum(r["credits"] for r in usage),
            "txs": [dict(r._mapping) for r in txs[:PAGE_SIZE]],
            "tx_page": tx_page,
            "tx_more": len(txs) > PAGE_SIZE,
            "logs": [dict(r._mapping) for r in logs[:PAGE_SIZE]],
            "log_page": log_page,
            "log_more": len(logs) > PAGE_SIZE,
            "log_models": sorted(log_models),
            "filters": {"model": f_model, "status": f_status, "origin": f_origin},
            "link": link,
            "page": "billing",
        },
    )
