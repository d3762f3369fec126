"""Members and budgets on the Projects pages: add a member to a project (a member of the
organisation, by email), change their role, remove them; set or remove the organisation's, a
project's or a member's budget (period, limit, alert thresholds, alert webhook). Every change that
alters what a key may spend revokes the cached keys it covers, on every instance."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.service import normalise_email
from modelgate.api.budgets import webhook_secret
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state
from modelgate.mail.webhooks import url_problem
from modelgate.store import budgets as budget_store
from modelgate.store import organisations as orgs
from modelgate.store.accounts import account_id_by_email
from modelgate.store.admin_directory import remove_project_member
from modelgate.store.db import Conn
from modelgate.web.project_access import (
    MAX_ID,
    not_allowed,
    not_found,
    org_access,
    parse_usd,
    project_access,
    record,
)
from modelgate.web.projects import _list_page, project_page
from modelgate.web.sessions import CsrfUser, WebUser

router = APIRouter(include_in_schema=False)


async def _revoke(request: Request, key_ids: list[int]) -> None:
    for key_id in key_ids:
        await app_state(request).keys.revoke(key_id=key_id)


@router.post("/app/projects/{project_id}/members")
async def put_member(request: Request, user: CsrfUser, project_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    """Add a member of the organisation to the project, or change their project role."""
    form = await request.form()
    role = str(form.get("role") or "member")
    raw = str(form.get("email") or "").strip()
    async with app_state(request).db.engine.begin() as conn:
        access = await project_access(conn, user, project_id)
        if access is None:
            return not_found(request, "project")
        if not access.manages:
            return not_allowed(
                request, "Only the project's owners and the organisation's admins change its members."
            )
        problem = None
        account = None
        if role not in orgs.PROJECT_ROLES:
            problem = "Choose the role owner or member."
        elif not raw or len(raw) > 320 or "@" not in raw or any(ord(c) < 32 for c in raw):
            problem = "Enter the email of a member of the organisation."
        else:
            account = await account_id_by_email(conn, email=normalise_email(raw))
            in_org = account is not None and await orgs.org_role(
                conn, org_id=access.org.org_id, account_id=account
            )
            if not in_org:
                problem = (
                    f"{raw} is not a member of {access.org.label}. "
                    "Invite them to the organisation first (Invitations), then add them here."
                )
        if problem is not None or account is None:
            return await project_page(
                request,
                user,
                project_id,
                errors={"member": problem or ""},
                form={"member_email": raw},
                status_code=400,
            )
        before = await orgs.project_role(conn, project_id=project_id, account_id=account)
        await orgs.add_project_member(conn, project_id=project_id, account_id=account, role=role)
        await record(
            conn,
            request,
            user,
            access.org.org_id,
            "user.added" if before is None else "user.updated",
            project_id=project_id,
            resource_id=f"user_{account}",
            details={"data" if before is None else "changes_requested": {"role": role}},
        )
    return RedirectResponse(f"/app/projects/{project_id}?saved=member#members", status_code=303)


@router.post("/app/projects/{project_id}/members/{account_id}/remove")
async def remove_member(
    request: Request,
    user: CsrfUser,
    project_id: int = Path(ge=1, le=MAX_ID),
    account_id: int = Path(ge=1, le=MAX_ID),
) -> Response:
    async with app_state(request).db.engine.begin() as conn:
        access = await project_access(conn, user, project_id)
        if access is None:
            return not_found(request, "project")
        if not access.manages:
            return not_allowed(
                request, "Only the project's owners and the organisation's admins change its members."
            )
        if await orgs.project_role(conn, project_id=project_id, account_id=account_id) is None:
            return not_found(request, "member")
        await remove_project_member(conn, project_id=project_id, account_id=account_id)
        await record(
            conn,
            request,
            user,
            access.org.org_id,
            "user.deleted",
            project_id=project_id,
            resource_id=f"user_{account_id}",
        )
    return RedirectResponse(f"/app/projects/{project_id}?saved=removed#members", status_code=303)


def parse_budget(form: FormData, *, refuse_private: bool) -> tuple[dict[str, object], str | None]:
    """The budget form's values (period, limit in credits, thresholds, webhook) or the problem."""
    period = str(form.get("period") or "")
    limit = parse_usd(str(form.get("limit_usd") or ""))
    raw_thresholds = str(form.get("thresholds") or "").replace("%", "")
    webhook = str(form.get("webhook") or "").strip()
    if period not in budget_store.PERIODS:
        return {}, "Choose the budget's period: day, week, month or none."
    if limit is None:
        return {}, "Enter the budget's limit in USD, greater than 0."
    parts = [t.strip() for t in raw_thresholds.split(",") if t.strip()]
    if len(parts) > 10 or any(not t.isdigit() or not 1 <= int(t) <= 100 for t in parts):
        return (
            {},
            "Alert thresholds are up to ten percentages from 1 to 100, separated by commas (50, 80, 100).",
        )
    problem = url_problem(webhook, refuse_private=refuse_private) if webhook else None
    if problem is not None:
        return {}, f"Alert webhook: {problem}."
    thresholds = sorted({int(t) for t in parts}) or None
    return {
        "period": period,
        "limit_credits": limit,
        "alert_thresholds": thresholds,
        "alert_webhook": webhook or None,
    }, None


async def save_budget(
    conn: Conn,
    request: Request,
    user: WebUser,
    *,
    org_id: int,
    project_id: int | None,
    member_id: int | None,
    values: dict[str, object],
) -> str | None:
    """Set one level's budget, record it, and give its webhook a signing secret when its URL is
    new (returned: shown this once); the keys it covers are revoked by the caller."""
    before = await budget_store.budget_at(conn, org_id=org_id, project_id=project_id, member_id=member_id)
    budget_id = await budget_store.set_budget(
        conn,
        org_id=org_id,
        project_id=project_id,
        member_id=member_id,
        **values,  # type: ignore[arg-type]
    )
    budget: dict[str, object] = {
        "id": budget_id,
        "period": values["period"],
        "limit_usd": int(values["limit_credits"]) / CREDITS_PER_USD,  # type: ignore[call-overload]
    }
    if member_id is not None:
        budget["member_id"] = f"user_{member_id}"
    await _record_budget(conn, request, user, org_id, project_id, budget)
    webhook = values["alert_webhook"]
    return await webhook_secret(conn, budget_id, before, webhook if isinstance(webhook, str) else None)


async def _record_budget(
    conn: Conn,
    request: Request,
    user: WebUser,
    org_id: int,
    project_id: int | None,
    budget: dict[str, object],
) -> None:
    kind, resource = (
        ("organization.updated", f"org_{org_id}")
        if project_id is None
        else ("project.updated", f"proj_{project_id}")
    )
    await record(
        conn,
        request,
        user,
        org_id,
        kind,
        project_id=project_id,
        resource_id=resource,
        details={"changes_requested": {"budget": budget}},
    )


@router.post("/app/projects/{project_id}/budgets")
async def put_budget(request: Request, user: CsrfUser, project_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    """The project's budget (the organisation's managers) or a member's within it (the project's
    owners too)."""
    form = await request.form()
    member_raw = str(form.get("member") or "")
    async with app_state(request).db.engine.begin() as conn:
        access = await project_access(conn, user, project_id)
        if access is None:
            return not_found(request, "project")
        member = int(member_raw) if member_raw.isdigit() and len(member_raw) <= 10 else None
        if member is None and not access.org.manages:
            return not_allowed(request, "Only the organisation's owners and admins set a project's budget.")
        if member is not None and not access.manages:
            return not_allowed(
                request, "Only the project's owners and the organisation's admins set members' budgets."
            )
        values, problem = parse_budget(
            form, refuse_private=app_state(request).settings.webhook_refuse_private
        )
        if (
            member is not None
            and await orgs.project_role(conn, project_id=project_id, account_id=member) is None
        ):
            problem = "Choose a member of this project."
        if problem is not None:
            return await project_page(request, user, project_id, errors={"budget": problem}, status_code=400)
        secret = await save_budget(
            conn,
            request,
            user,
            org_id=access.org.org_id,
            project_id=project_id,
            member_id=member,
            values=values,
        )
        keys = await budget_store.keys_under(
            conn, org_id=access.org.org_id, project_id=project_id, member_id=member
        )
    await _revoke(request, keys)
    if secret is not None:  # shown this once, on the page itself
        return await project_page(request, user, project_id, webhook_secret=secret)
    return RedirectResponse(f"/app/projects/{project_id}?saved=budget#budgets", status_code=303)


@router.post("/app/projects/{project_id}/budgets/{budget_id}/delete")
async def delete_budget(
    request: Request,
    user: CsrfUser,
    project_id: int = Path(ge=1, le=MAX_ID),
    budget_id: int = Path(ge=1, le=MAX_ID),
) -> Response:
    async with app_state(request).db.engine.begin() as conn:
        access = await project_access(conn, user, project_id)
        if access is None:
            return not_found(request, "project")
        found = await budget_store.get_budget(conn, budget_id=budget_id)
        if found is None or found[0] != access.org.org_id or found[1] != project_id:
            return not_found(request, "budget")
        if not (access.org.manages or (found[2] is not None and access.manages)):
            return not_allowed(request, "Your role does not allow removing this budget.")
        keys = await budget_store.keys_under(conn, org_id=found[0], project_id=found[1], member_id=found[2])
        await budget_store.delete_budget(conn, org_id=found[0], budget_id=budget_id)
        gone = {"id": budget_id, "deleted": True, **({"member_id": f"user_{found[2]}"} if found[2] else {})}
        await _record_budget(conn, request, user, found[0], project_id, gone)
    await _revoke(request, keys)
    return RedirectResponse(f"/app/projects/{project_id}?saved=budget-removed#budgets", status_code=303)


@router.post("/app/orgs/{org_id}/budget")
async def put_org_budget(request: Request, user: CsrfUser, org_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    """The organisation's own budget (its owners and admins); ``remove=1`` removes it."""
    form = await request.form()
    async with app_state(request).db.engine.begin() as conn:
        org = await org_access(conn, user, org_id)
        if org is None or not org.whole:
            return not_found(request, "organisation")
        if not org.manages:
            return not_allowed(request, "Only the organisation's owners and admins set its budget.")
        keys = await budget_store.keys_under(conn, org_id=org_id, project_id=None, member_id=None)
        secret = None
        if form.get("remove") == "1":
            for b in await budget_store.list_budgets(conn, org_id=org_id, bucket=lambda p: p, project_ids=[]):
                if b.level == "organisation":
                    await budget_store.delete_budget(conn, org_id=org_id, budget_id=b.id)
                    await _record_budget(conn, request, user, org_id, None, {"id": b.id, "deleted": True})
        else:
            values, problem = parse_budget(
                form, refuse_private=app_state(request).settings.webhook_refuse_private
            )
            if problem is not None:
                return await _list_page(request, user, errors={f"budget-{org_id}": problem}, status_code=400)
            secret = await save_budget(
                conn, request, user, org_id=org_id, project_id=None, member_id=None, values=values
            )
    await _revoke(request, keys)
    if secret is not None:  # shown this once, on the page itself
        return await _list_page(request, user, webhook_secret=secret)
    return RedirectResponse(f"/app/projects?saved=budget#org-{org_id}", status_code=303)
