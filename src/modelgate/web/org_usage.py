"""Usage and cost of an organisation (``/app/orgs/{id}/usage``): requests, tokens and spend per day
grouped by project, member, key or model, as an SVG chart and a table, filtered by date range,
project, member, key and model, and the same rows as CSV (``usage.csv``). The rows come from
``store/usage.py`` (``LogFilter``, the filter of ``/v2/usage``, the Billing page and its exports).

Its owners, admins and billing members see the whole organisation; a plain member sees only the
projects it belongs to (the project filter is then one of those, the first by default): any other
project, or a key or member filter outside it, is answered 404.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from markupsafe import Markup
from starlette.responses import Response

from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.store import organisations as orgs
from modelgate.store.admin_directory import project_users_page
from modelgate.store.keys import key_labels
from modelgate.store.usage import GROUPS, logged_models, usage_by_group
from modelgate.web.billing_data import BillingFilter, parse_filter
from modelgate.web.charts import bar, colors, day_range, money, number, stacked_bars, swatch
from modelgate.web.exports import safe_cell
from modelgate.web.project_access import MAX_ID, OrgAccess, my_projects, not_found, org_access
from modelgate.web.render import render
from modelgate.web.sessions import CurrentUser, WebUser

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

METRICS = {"usd": "Spend (USD)", "requests": "Requests", "tokens": "Tokens"}
CHARTED = 8
OTHERS = "others"


@dataclass
class Usage:
    org: OrgAccess
    f: BillingFilter
    by: str
    rows: list[tuple[date, Any, int, int, int]]
    labels: dict[Any, str]
    projects: dict[int, str]
    members: dict[int, str]
    keys: dict[int, str]
    models: list[str]


async def _usage(request: Request, user: WebUser, org_id: int) -> Usage | None:
    """The rows the person asked for, or None when anything asked for is not theirs to see."""
    q = request.query_params
    by = q.get("by") or "project"
    by = by if by in GROUPS else "project"
    f = parse_filter(q, datetime.now(UTC).date())
    async with app_state(request).db.engine.connect() as conn:
        org = await org_access(conn, user, org_id)
        if org is None:
            return None
        projects = {p.id: p.name for p in await my_projects(conn, user, org)}
        if not projects:
            return None
        if f.project_id is not None and f.project_id not in projects:
            return None
        if not org.whole and f.project_id is None:
            f.project_id = next(iter(projects))
        members = {a: e for a, e, _ in await orgs.org_members(conn, org_id=org_id)}
        if f.member_id is not None and f.member_id not in members:
            return None
        keys = await key_labels(conn, account_id=org_id)
        if not org.whole:
            confined = set(await orgs.project_keys(conn, project_ids=[f.project_id or 0]))
            keys = {k: v for k, v in keys.items() if k in confined}
            people = await project_users_page(conn, project_id=f.project_id or 0, after=0, limit=10_000)
            mine = {m.account_id for m in people}
            members = {a: e for a, e in members.items() if a in mine}
            if f.member_id is not None and f.member_id not in members:
                return None
        if f.key_id is not None and f.key_id not in keys:
            return None
        rows = await usage_by_group(conn, f.usage(org_id), by=by)
        models = await logged_models(conn, account_id=org_id) if org.whole else []
    labels: dict[Any, str] = {
        "project": {**projects},
        "member": {**members},
        "key": {**keys},
    }.get(by, {})
    if by == "model":
        labels = {r[1]: str(r[1]) for r in rows}
        models = models or sorted(labels)
    return Usage(org, f, by, rows, labels, projects, members, keys, models)


def _label(u: Usage, value: Any) -> str:
    if value is None:
        return {"key": "no key", "member": "no member", "project": "no project"}.get(u.by, "—")
    return u.labels.get(value, f"deleted {u.by}" if u.by != "model" else str(value))


def _value(row: tuple[date, Any, int, int, int], metric: str) -> float:
    return {"usd": row[4] / CREDITS_PER_USD, "requests": float(row[2]), "tokens": float(row[3])}[metric]


@router.get("/app/orgs/{org_id}/usage")
async def usage_page(request: Request, user: CurrentUser, org_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    u = await _usage(request, user, org_id)
    if u is None:
        return not_found(request, "usage")
    metric = request.query_params.get("metric") or "usd"
    metric = metric if metric in METRICS else "usd"
    totals: dict[str, dict[str, Any]] = {}
    for r in u.rows:
        name = _label(u, r[1])
        t = totals.setdefault(name, {"name": name, "requests": 0, "tokens": 0, "credits": 0, "value": 0.0})
        t["requests"] += r[2]
        t["tokens"] += r[3]
        t["credits"] += r[4]
        t["value"] += _value(r, metric)
    table = sorted(totals.values(), key=lambda t: (-t["value"], t["name"]))
    charted = [t["name"] for t in table[:CHARTED]]
    names = charted + ([OTHERS] if len(table) > CHARTED else [])
    palette = colors(names)
    top = max((t["value"] for t in table), default=0) or 1
    for t in table:
        pct = round(100 * t["value"] / top, 1)
        color = palette.get(t["name"], palette.get(OTHERS, "#3b5bdb"))
        t["bar"] = Markup(bar(pct, color, label=f"{t['name']}: {pct}% of the largest"))
        t["swatch"] = Markup(swatch(color))
    per_day: dict[tuple[date, str], float] = {}
    for r in u.rows:
        name = _label(u, r[1])
        name = name if name in charted else OTHERS
        per_day[(r[0], name)] = per_day.get((r[0], name), 0.0) + _value(r, metric)
    span = day_range(u.f.start, u.f.end)
    title = f"{METRICS[metric]} per day and {u.by}, {u.f.start:%b %d} to {u.f.end:%b %d, %Y}"
    fmt = money if metric == "usd" else number
    charts = [  # charts.py escapes every label
        Markup(stacked_bars(span, per_day, palette, title=title, fmt=fmt, integer=metric != "usd")),
        Markup(
            stacked_bars(span, per_day, palette, title=title, fmt=fmt, integer=metric != "usd", width=360)
        ),
    ]
    query = {**u.f.query(), "by": u.by}
    return render(
        request,
        "org_usage.html",
        {
            "u": u,
            "org": u.org,
            "f": u.f,
            "by": u.by,
            "groups": GROUPS,
            "metric": metric,
            "metrics": METRICS,
            "charts": charts,
            "legend": [(n, palette[n]) for n in names],
            "table": table,
            "total_requests": sum(r[2] for r in u.rows),
            "total_tokens": sum(r[3] for r in u.rows),
            "total_credits": sum(r[4] for r in u.rows),
            "query": query,
            "page": "projects",
        },
    )


@router.get("/app/orgs/{org_id}/usage.csv")
async def usage_csv(request: Request, user: CurrentUser, org_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    u = await _usage(request, user, org_id)
    if u is None:
        return not_found(request, "usage")
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["day", u.by, "requests", "tokens", "credits", "usd"])
    for r in sorted(u.rows, key=lambda r: (r[0], _label(u, r[1]))):
        usd = format(Decimal(r[4]) / CREDITS_PER_USD, "f")
        out.writerow([safe_cell(v) for v in (r[0].isoformat(), _label(u, r[1]), r[2], r[3], r[4], usd)])
    name = f"modelgate-usage-{org_id}-{u.by}-{u.f.start}-{u.f.end}.csv"
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
