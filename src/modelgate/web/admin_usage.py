"""Usage and spend across all accounts on the operator console (``/admin/usage``): a chart of the
credits charged per day, stacked by account (the eight largest, the rest together), and a table of
every account's requests, errors, tokens, spend and balance over the chosen period."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup
from starlette.responses import Response

from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.store.accounts import balances
from modelgate.store.usage_console import usage_by_day_and_account
from modelgate.web.admin import Operator
from modelgate.web.charts import colors, day_range, money, stacked_bars
from modelgate.web.render import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

PERIODS = (7, 30, 90)
CHART_ACCOUNTS = 8
OTHERS = "other accounts"


@router.get("/admin/usage")
async def usage_page(request: Request, user: Operator) -> Response:
    raw = request.query_params.get("days", "30")
    days = int(raw) if raw.isdigit() and int(raw) in PERIODS else 30
    end = datetime.now(UTC).date()
    start = end - timedelta(days=days - 1)
    since = datetime.combine(start, time(0), tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
    async with app_state(request).db.engine.connect() as conn:
        rows = await usage_by_day_and_account(conn, since=since, until=until)
        totals: dict[int, dict[str, Any]] = {}
        for r in rows:
            t = totals.setdefault(
                r.account_id,
                {
                    "account_id": r.account_id,
                    "email": r.email,
                    "requests": 0,
                    "errors": 0,
                    "tokens": 0,
                    "credits": 0,
                },
            )
            for name in ("requests", "errors", "tokens", "credits"):
                t[name] += getattr(r, name)
        owed = await balances(conn, account_ids=list(totals))
    table = sorted(totals.values(), key=lambda t: (-t["credits"], -t["requests"], t["email"]))
    for t in table:
        t["balance"] = owed.get(t["account_id"])
    charted = [t["email"] for t in table[:CHART_ACCOUNTS]]
    per_day: dict[tuple[date, str], float] = {}
    for r in rows:
        name = r.email if r.email in charted else OTHERS
        per_day[(r.day, name)] = per_day.get((r.day, name), 0.0) + r.credits / CREDITS_PER_USD
    names = charted + ([OTHERS] if len(table) > CHART_ACCOUNTS else [])
    palette = colors(names)
    title = f"Spend per day and account, {start:%b %d} to {end:%b %d, %Y}"
    span = day_range(start, end)
    charts = [  # charts.py escapes every label
        Markup(stacked_bars(span, per_day, palette, title=title, fmt=money)),
        Markup(stacked_bars(span, per_day, palette, title=title, fmt=money, width=360)),
    ]
    summary = {name: sum(t[name] for t in table) for name in ("requests", "errors", "tokens", "credits")}
    ctx = {
        "charts": charts,
        "legend": [(n, palette[n]) for n in names],
        "table": table,
        "summary": summary,
        "days": days,
        "periods": PERIODS,
        "start": start,
        "end": end,
        "page": "admin",
        "section": "usage",
    }
    return render(request, "admin/usage.html", ctx)
