"""Organisations on the operator console (``/admin/organisations``): every team organisation (and,
on request, the personal ones) with its members, projects, balance and spend over 7, 30 or 90
days, largest spend first; each links to its details — members and roles, projects, budgets with
their spend, and the spend per project over the period."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.team_orgs import OrgNameError, create_team_org
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.store import budgets as budget_store
from modelgate.store import organisations as orgs
from modelgate.store.accounts import account_id_by_email
from modelgate.store.admin_directory import projects_page
from modelgate.store.ledger import period_key
from modelgate.store.org_overview import org_summaries, org_summary
from modelgate.store.spend_alerts import recent_alerts
from modelgate.store.usage import LogFilter, usage_by_group
from modelgate.web.admin import Operator, OperatorCsrf, _Form, actor
from modelgate.web.project_access import MAX_ID
from modelgate.web.projects import alert_view, budget_view
from modelgate.web.render import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

PERIODS = (7, 30, 90)


def _window(request: Request) -> tuple[int, datetime, datetime]:
    raw = request.query_params.get("days", "30")
    days = int(raw) if raw.isdigit() and int(raw) in PERIODS else 30
    end = datetime.now(UTC).date()
    since = datetime.combine(end - timedelta(days=days - 1), time(0), tzinfo=UTC)
    return days, since, datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)


@router.get("/admin/organisations")
async def organisations_page(request: Request, user: Operator) -> Response:
    return await _list(request)


async def _list(request: Request, form: _Form | None = None, status_code: int = 200) -> Response:
    days, since, until = _window(request)
    personal = request.query_params.get("personal") == "1"
    async with app_state(request).db.engine.connect() as conn:
        rows = await org_summaries(conn, since=since, until=until, personal=personal)
    return render(
        request,
        "admin/organisations.html",
        {
            "rows": rows,
            "days": days,
            "periods": PERIODS,
            "personal": personal,
            "total": sum(r.spent_credits for r in rows),
            "form": form or _Form({}, {}),
            "page": "admin",
            "section": "organisations",
        },
        status_code=status_code,
    )


@router.post("/admin/organisations")
async def create_organisation(request: Request, user: OperatorCsrf) -> Response:
    """A team organisation made by an operator: its owner (an existing account), prepaid or postpaid."""
    form = await request.form()
    name, email = str(form.get("name") or "")[:1000], str(form.get("owner") or "").strip()[:320]
    postpaid = form.get("billing") == "postpaid"
    values = {"name": name.strip()[:200], "owner": email, "billing": "postpaid" if postpaid else "prepaid"}
    try:
        async with app_state(request).db.engine.begin() as conn:
            owner = await account_id_by_email(conn, email=email) if "@" in email else None
            if owner is None:
                errors = {"owner": "No account has this email: the owner must have signed up first."}
                return await _list(request, _Form(errors, values), status_code=400)
            org_id = await create_team_org(
                conn, name=name, owner_id=owner, actor=actor(user), postpaid=postpaid
            )
    except OrgNameError as exc:
        return await _list(request, _Form({"name": str(exc)}, values), status_code=400)
    return RedirectResponse(f"/admin/organisations/{org_id}?done=created", status_code=303)


@router.get("/admin/organisations/{org_id}")
async def organisation_page(
    request: Request, user: Operator, org_id: int = Path(ge=1, le=MAX_ID)
) -> Response:
    return await org_console_page(request, org_id)


async def org_console_page(
    request: Request, org_id: int, *, form: _Form | None = None, status_code: int = 200
) -> Response:
    """An organisation's console page (its top-up form re-shown with ``form``'s errors)."""
    days, since, until = _window(request)
    async with app_state(request).db.engine.connect() as conn:
        summary = await org_summary(conn, org_id=org_id, since=since, until=until)
        if summary is None:
            return render(
                request,
                "error.html",
                {"title": "Not found", "message": "No such organisation.", "back": "/admin/organisations"},
                status_code=404,
            )
        members = await orgs.org_members(conn, org_id=org_id)
        projects = await projects_page(conn, org_id=org_id, after=0, limit=1000, include_archived=True)
        emails = {a: e for a, e, _ in members}
        budgets = [
            budget_view(b, emails)
            for b in await budget_store.list_budgets(conn, org_id=org_id, bucket=period_key)
        ]
        alerts = [alert_view(a, emails) for a in await recent_alerts(conn, org_id=org_id, limit=20)]
        spend = await usage_by_group(
            conn, LogFilter(account_id=org_id, since=since, until=until), by="project"
        )
    names = {p.id: p.name for p in projects}
    per_project: dict[str, list[int]] = {}
    for _day, pid, requests, _tokens, credits in spend:
        name = names.get(pid, "no project") if pid is not None else "no project"
        t = per_project.setdefault(name, [0, 0])
        t[0] += requests
        t[1] += credits
    for b in budgets:
        b["project"] = names.get(b.get("project_id") or 0, "")
    return render(
        request,
        "admin/organisation.html",
        {
            "o": summary,
            "members": members,
            "projects": projects,
            "budgets": budgets,
            "alerts": alerts,
            "per_project": sorted(per_project.items(), key=lambda kv: -kv[1][1]),
            "days": days,
            "periods": PERIODS,
            "form": form or _Form({}, {}),
            "done": request.query_params.get("done", ""),
            "page": "admin",
            "section": "organisations",
        },
        status_code=status_code,
    )
