"""The Invitations page of an organisation (``/app/orgs/{id}/invitations``, its owners and
admins): the invitations sent, with their state (pending, accepted, expired); a form to invite
someone by email with a role and, optionally, a project to join; revoking a pending one. The
invitation is the Admin API's (``store/admin_invites.py``, ``api/admin_invites.py``): a one-time
``/app/invite/<token>`` link, valid 7 days, mailed when SMTP is configured; otherwise (or when
delivery fails) the page shows the link once, to pass on. Accepting is ``web/invite.py``."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.service import normalise_email
from modelgate.api.admin_invites import ACCEPT_PATH, INVITE_TTL, status, token_digest
from modelgate.httpkit.deps import app_state
from modelgate.mail.messages import link, send_invitation
from modelgate.mail.sender import Mailer
from modelgate.store import admin_invites as invites
from modelgate.store import organisations as orgs
from modelgate.store.accounts import account_id_by_email
from modelgate.web.project_access import (
    MAX_ID,
    OrgAccess,
    my_projects,
    not_allowed,
    not_found,
    org_access,
    record,
)
from modelgate.web.render import render
from modelgate.web.sessions import CsrfUser, CurrentUser, WebUser

router = APIRouter(include_in_schema=False)
ROLES = ("member", "admin", "billing", "owner")


async def _page(
    request: Request,
    user: WebUser,
    org: OrgAccess,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    accept_url: str | None = None,
    mailed: str | None = None,
    status_code: int = 200,
) -> Response:
    now = datetime.now(UTC)
    async with app_state(request).db.engine.connect() as conn:
        rows = await invites.invites_page(conn, org_id=org.org_id, after=0, limit=500)
        projects = await my_projects(conn, user, org)
    names = {p.id: p.name for p in projects}
    shown: list[dict[str, Any]] = [
        {
            "id": r.id,
            "email": r.email,
            "role": r.role,
            "status": status(r, now),
            "projects": [(names.get(p, f"project {p}"), role) for p, role in r.projects],
            "created_at": r.created_at,
            "expires_at": r.expires_at,
        }
        for r in sorted(rows, key=lambda r: r.id, reverse=True)
    ]
    return render(
        request,
        "invitations.html",
        {
            "org": org,
            "invites": shown,
            "projects": projects,
            "roles": ROLES if org.role == "owner" else ROLES[:3],
            "errors": errors or {},
            "form": form or {},
            "accept_url": accept_url,
            "mailed": mailed,
            "saved": request.query_params.get("saved", ""),
            "page": "projects",
        },
        status_code=status_code,
    )


async def _manager(request: Request, user: WebUser, org_id: int) -> OrgAccess | Response:
    async with app_state(request).db.engine.connect() as conn:
        org = await org_access(conn, user, org_id)
    if org is None or not org.whole:
        return not_found(request, "organisation")
    if not org.manages:
        return not_allowed(request, "Only the organisation's owners and admins manage its invitations.")
    return org


@router.get("/app/orgs/{org_id}/invitations")
async def invitations_page(
    request: Request, user: CurrentUser, org_id: int = Path(ge=1, le=MAX_ID)
) -> Response:
    org = await _manager(request, user, org_id)
    return org if isinstance(org, Response) else await _page(request, user, org)


@router.post("/app/orgs/{org_id}/invitations")
async def invite(request: Request, user: CsrfUser, org_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    org = await _manager(request, user, org_id)
    if isinstance(org, Response):
        return org
    form = await request.form()
    raw = str(form.get("email") or "").strip()
    role = str(form.get("role") or "member")
    project_raw = str(form.get("project") or "")
    project_role = str(form.get("project_role") or "member")
    echo = {"email": raw, "role": role, "project": project_raw, "project_role": project_role}
    email = normalise_email(raw)
    problem = None
    if not email or len(email) > 320 or "@" not in email.strip("@") or any(ord(c) <= 32 for c in email):
        problem = "Enter the email address of the person to invite."
    elif role not in ROLES or (role == "owner" and org.role != "owner"):
        problem = "Choose a role you may give: member, admin or billing (owners may also name owners)."
    elif project_role not in orgs.PROJECT_ROLES:
        problem = "Choose the project role: owner or member."
    token = secrets.token_urlsafe(32)
    async with app_state(request).db.engine.begin() as conn:
        projects = {p.id: p for p in await my_projects(conn, user, org)}
        chosen: list[tuple[int, str]] = []
        if project_raw:
            pid = int(project_raw) if project_raw.isdigit() and len(project_raw) <= 10 else 0
            if pid not in projects:
                problem = problem or "Choose one of the organisation's projects, or none."
            else:
                chosen = [(pid, project_role)]
        if problem is None:
            existing = await account_id_by_email(conn, email=email)
            if existing is not None and await orgs.org_role(conn, org_id=org_id, account_id=existing):
                problem = f"{email} is already a member of {org.label}."
        if problem is not None:
            return await _page(request, user, org, errors={"invite": problem}, form=echo, status_code=400)
        invite_id = await invites.create_invite(
            conn,
            org_id=org_id,
            email=email,
            role=role,
            projects=chosen,
            digest=token_digest(token),
            invited_by=user.account_id,
            expires_at=datetime.now(UTC) + INVITE_TTL,
        )
        await record(
            conn,
            request,
            user,
            org_id,
            "invite.sent",
            resource_id=f"invite_{invite_id}",
            details={"data": {"email": email, "role": role}},
        )
    state = app_state(request)
    url = link(state.settings.public_url or str(request.base_url), ACCEPT_PATH + token)
    mailer = state.extras.get("mailer")
    sent = False
    if isinstance(mailer, Mailer) and mailer.configured:
        sent = await send_invitation(
            mailer, to=email, inviter=user.email, organisation=org.name, accept_url=url
        )
    if sent:
        return await _page(request, user, org, mailed=email)
    return await _page(request, user, org, accept_url=url)


@router.post("/app/orgs/{org_id}/invitations/{invite_id}/revoke")
async def revoke(
    request: Request,
    user: CsrfUser,
    org_id: int = Path(ge=1, le=MAX_ID),
    invite_id: int = Path(ge=1, le=MAX_ID),
) -> Response:
    org = await _manager(request, user, org_id)
    if isinstance(org, Response):
        return org
    async with app_state(request).db.engine.begin() as conn:
        row = await invites.invite(conn, org_id=org_id, invite_id=invite_id)
        if row is None:
            return not_found(request, "invitation")
        if row.accepted_at is not None:
            return not_allowed(
                request, "An accepted invitation cannot be revoked.", back=f"/app/orgs/{org_id}/invitations"
            )
        await invites.delete_invite(conn, invite_id=invite_id)
        await record(conn, request, user, org_id, "invite.deleted", resource_id=f"invite_{invite_id}")
    return RedirectResponse(f"/app/orgs/{org_id}/invitations?saved=revoked", status_code=303)
