"""The Projects pages (docs/web.md, "Organisations"): ``/app/projects`` lists, per organisation the
person belongs to, the projects they may see, the organisation's budget and (for its owners and
admins) forms to create a project and set that budget; ``/app/projects/{id}`` shows a project —
settings (model allow-list, rpm, tpm), members, budgets with their spend, and keys with each key's
spend against every level it falls under. Members and budgets are changed in ``project_team``, keys
in ``project_keys``; who may do what is ``project_access``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.keys import KEY_SCOPES
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.store import budgets as budget_store
from modelgate.store import organisations as orgs
from modelgate.store.admin_directory import project_users_page
from modelgate.store.key_rows import key_spend_since, list_keys, period_spend
from modelgate.store.ledger import period_key, period_start
from modelgate.store.spend_alerts import NO_LIMIT, AlertRow, recent_alerts
from modelgate.web.keys import _usd_input as usd_input
from modelgate.web.project_access import (
    MAX_ID,
    ProjectAccess,
    clean_text,
    my_projects,
    not_allowed,
    not_found,
    org_access,
    parse_count,
    parse_models,
    project_access,
    record,
)
from modelgate.web.render import render
from modelgate.web.sessions import CsrfUser, CurrentUser, WebUser

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

PERIOD_WORDS = {"day": "today", "week": "this week", "month": "this month", "none": "in total"}
RETENTIONS = {"": "never resets", "day": "per day", "week": "per week", "month": "per month"}
KEY_PERIOD = {"day": "day", "week": "week", "month": "month", "no_reset": "none", None: "none"}


def budget_view(b: budget_store.BudgetInfo, emails: dict[int, str]) -> dict[str, Any]:
    used = b.spent_credits + b.held_credits
    counting = b.limit_credits >= NO_LIMIT  # counts spend for amount alerts; limits nothing
    pct = 0.0 if counting else (100.0 * used / b.limit_credits if b.limit_credits else 100.0)
    return {
        "counting": counting,
        "id": b.id,
        "level": b.level,
        "project_id": b.project_id,
        "member_id": b.member_id,
        "member": emails.get(b.member_id or 0, "") if b.member_id else "",
        "period": b.period,
        "when": PERIOD_WORDS.get(b.period, b.period),
        "limit": b.limit_credits,
        "limit_input": "" if counting else usd_input(b.limit_credits),
        "spent": b.spent_credits,
        "held": b.held_credits,
        "pct": round(min(pct, 100.0), 1),
        "full": not counting and used >= b.limit_credits,
        "thresholds": b.alert_thresholds or [],
        "crossed": [t for t in (b.alert_thresholds or []) if pct >= t],
        "webhook": b.alert_webhook or "",
    }


def alert_view(a: AlertRow, emails: dict[int, str], keys: dict[int, str] | None = None) -> dict[str, Any]:
    """A spend alert raised (``store/spend_alerts.py``) as the pages show it."""
    return {
        "id": a.id,
        "level": a.level,
        "key": (keys or {}).get(a.key_id, "a deleted key") if a.key_id is not None else "",
        "member": emails.get(a.member_id or 0, "") if a.member_id else "",
        "threshold": f"{a.threshold_percent}%" if a.threshold_percent is not None else None,
        "threshold_credits": a.threshold_credits,
        "limit": a.limit_credits,
        "spent": a.spent_credits,
        "period": a.period,
        "at": a.created_at,
        "webhook": a.webhook_state,
        "attempts": a.webhook_attempts,
    }


@router.get("/app/projects")
async def projects_page(request: Request, user: CurrentUser) -> Response:
    return await _list_page(request, user)


async def _list_page(
    request: Request,
    user: WebUser,
    *,
    errors: dict[str, str] | None = None,
    webhook_secret: str | None = None,
    status_code: int = 200,
    new_org_name: str = "",
) -> Response:
    groups = []
    async with app_state(request).db.engine.connect() as conn:
        for m in await orgs.memberships(conn, account_id=user.account_id):
            org = await org_access(conn, user, m.org_id)
            assert org is not None
            projects = await my_projects(conn, user, org)
            if not projects:
                continue
            budgets = []
            if org.whole:
                every = await budget_store.list_budgets(
                    conn, org_id=org.org_id, bucket=period_key, project_ids=[]
                )
                budgets = [budget_view(b, {}) for b in every if b.level == "organisation"]
            groups.append({"org": org, "projects": projects, "budget": budgets[0] if budgets else None})
    return render(
        request,
        "projects.html",
        {
            "groups": groups,
            "errors": errors or {},
            "webhook_secret": webhook_secret,
            "saved": request.query_params.get("saved", ""),
            "periods": budget_store.PERIODS,
            "period_words": PERIOD_WORDS,
            "org_self_service": app_state(request).settings.org_self_service,
            "new_org_name": new_org_name,
            "page": "projects",
        },
        status_code=status_code,
    )


@router.post("/app/orgs/{org_id}/projects")
async def create_project(request: Request, user: CsrfUser, org_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    form = await request.form()
    async with app_state(request).db.engine.begin() as conn:
        org = await org_access(conn, user, org_id)
        if org is None or not org.whole:
            return not_found(request, "organisation")
        if not org.manages:
            return not_allowed(request, "Only the organisation's owners and admins create projects.")
        name = clean_text(form.get("name"))
        if name is None:
            return await _list_page(
                request,
                user,
                errors={f"name-{org_id}": "Give the project a name of at most 200 characters."},
                status_code=400,
            )
        pid = await orgs.create_project(conn, org_id=org_id, name=name, owner_id=user.account_id)
        await record(
            conn,
            request,
            user,
            org_id,
            "project.created",
            project_id=pid,
            resource_id=f"proj_{pid}",
            details={"data": {"name": name}},
        )
    return RedirectResponse(f"/app/projects/{pid}?saved=created", status_code=303)


async def key_rows(conn: Any, access: ProjectAccess, budgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The project's keys, each with its spend against every level it falls under: the
    organisation's, the project's and its member's budgets, and its own limit."""
    keys = await list_keys(conn, account_id=access.org.org_id, management=None, project_id=access.project.id)
    ids = [k.id for k in keys]
    own: dict[str, dict[int, int]] = {}
    for period in {b["period"] for b in budgets} | {KEY_PERIOD.get(k.limit_retention, "none") for k in keys}:
        own[period] = await key_spend_since(conn, key_ids=ids, since=period_start(period))
    limits = await period_spend(
        conn, {(k.id, period_key(k.limit_retention)) for k in keys if k.limit_credits is not None}
    )
    rows = []
    for k in keys:
        levels = []
        for b in budgets:
            if b["counting"] or (b["level"] == "member" and b["member_id"] != k.member_id):
                continue
            levels.append(
                {
                    "level": b["level"] + (f" ({b['member']})" if b["level"] == "member" else ""),
                    "when": b["when"],
                    "mine": own[b["period"]].get(k.id, 0),
                    "used": b["spent"] + b["held"],
                    "limit": b["limit"],
                    "pct": b["pct"],
                    "full": b["full"],
                }
            )
        if k.limit_credits is not None:
            used = limits.get((k.id, period_key(k.limit_retention)), 0)
            period = KEY_PERIOD.get(k.limit_retention, "none")
            levels.append(
                {
                    "level": "key limit",
                    "when": PERIOD_WORDS[period],
                    "mine": used,
                    "used": used,
                    "limit": k.limit_credits,
                    "pct": round(min(100.0, 100.0 * used / k.limit_credits), 1) if k.limit_credits else 100.0,
                    "full": used >= k.limit_credits,
                }
            )
        rows.append({"k": k, "levels": levels, "editable": access.may_edit(k), "month": own.get("month", {})})
    return rows


async def project_page(
    request: Request,
    user: WebUser,
    project_id: int,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    new_key: str | None = None,
    webhook_secret: str | None = None,
    status_code: int = 200,
) -> Response:
    async with app_state(request).db.engine.connect() as conn:
        access = await project_access(conn, user, project_id)
        if access is None:
            return not_found(request, "project")
        org_id = access.org.org_id
        members = await project_users_page(conn, project_id=project_id, after=0, limit=1000)
        org_people = await orgs.org_members(conn, org_id=org_id)
        emails = {a: e for a, e, _ in org_people}
        budgets = [
            budget_view(b, emails)
            for b in await budget_store.list_budgets(
                conn, org_id=org_id, bucket=period_key, project_ids=[project_id]
            )
        ]
        keys = await key_rows(conn, access, budgets)
        labels = {row["k"].id: row["k"].name or row["k"].prefix for row in keys}
        alerts = [
            alert_view(a, emails, labels)
            for a in await recent_alerts(conn, org_id=org_id, project_ids=[project_id], limit=10)
        ]
    in_project = {m.account_id for m in members}
    return render(
        request,
        "project.html",
        {
            "a": access,
            "p": access.project,
            "members": members,
            # The organisation's roster is its managers' to see; a project owner types the email.
            "candidates": [(a, e) for a, e, r in org_people if a not in in_project and r != "billing"]
            if access.org.manages
            else [],
            "budgets": budgets,
            "alerts": alerts,
            "keys": keys,
            "scopes": KEY_SCOPES,
            "retentions": RETENTIONS,
            "periods": budget_store.PERIODS,
            "period_words": PERIOD_WORDS,
            "errors": errors or {},
            "form": form or {"scopes": list(KEY_SCOPES)},
            "new_key": new_key,
            "webhook_secret": webhook_secret,
            "usd_input": usd_input,
            "saved": request.query_params.get("saved", ""),
            "page": "projects",
        },
        status_code=status_code,
    )


@router.get("/app/projects/{project_id}")
async def project_view(
    request: Request, user: CurrentUser, project_id: int = Path(ge=1, le=MAX_ID)
) -> Response:
    from modelgate.web.project_keys import NEW_KEY_COOKIE, new_key_shown_once

    new_key = await new_key_shown_once(request, project_id)
    response = await project_page(request, user, project_id, new_key=new_key)
    if NEW_KEY_COOKIE in request.cookies:
        response.delete_cookie(NEW_KEY_COOKIE, path=f"/app/projects/{project_id}")
    return response


@router.post("/app/projects/{project_id}/settings")
async def project_settings(
    request: Request, user: CsrfUser, project_id: int = Path(ge=1, le=MAX_ID)
) -> Response:
    """Name, model allow-list, rpm and tpm (the organisation's managers and the project's owners)."""
    form = await request.form()
    state = app_state(request)
    async with state.db.engine.begin() as conn:
        access = await project_access(conn, user, project_id)
        if access is None:
            return not_found(request, "project")
        if not access.manages:
            return not_allowed(request, "Only the project's owners and the organisation's admins change it.")
        errors: dict[str, str] = {}
        name = clean_text(form.get("name"))
        if name is None:
            errors["p-name"] = "Give the project a name of at most 200 characters."
        models = parse_models(str(form.get("allowed_models") or ""))
        if isinstance(models, str):
            errors["p-models"] = f"Allowed models: {models}."
        rpm = parse_count(str(form.get("rpm") or ""))
        tpm = parse_count(str(form.get("tpm") or ""), high=1_000_000_000)
        if isinstance(rpm, str):
            errors["p-rpm"] = f"Requests per minute: {rpm}."
        if isinstance(tpm, str):
            errors["p-tpm"] = f"Tokens per minute: {tpm}."
        if errors:
            return await project_page(request, user, project_id, errors=errors, status_code=400)
        changes = {"name": name, "allowed_models": models, "rpm": rpm, "tpm": tpm}
        await record(
            conn,
            request,
            user,
            access.org.org_id,
            "project.updated",
            project_id=project_id,
            resource_id=f"proj_{project_id}",
            details={"changes_requested": changes},
        )
        await orgs.update_project(
            conn, project_id=project_id, name=name, allowed_models=models, rpm=rpm, tpm=tpm
        )
        keys = await budget_store.keys_under(
            conn, org_id=access.org.org_id, project_id=project_id, member_id=None
        )
    for key_id in keys:
        await state.keys.revoke(key_id=key_id)
    return RedirectResponse(f"/app/projects/{project_id}?saved=settings#settings", status_code=303)
