"""Accepting an invitation into an organisation: ``/app/invite/<token>`` (the link that
``POST /v1/organization/invites`` mails or answers, docs/admin-api.md).

The page shows which organisation invites whom; someone not signed in is offered to log in or
sign up (and comes back here); the invited person, signed in with the invited email, joins with
one button (a POST: link previews that GET the page do not use it up). A used, expired or
withdrawn invitation is refused with a page that says which."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from modelgate.api.admin_invites import ACCEPT_PATH, status, token_digest
from modelgate.httpkit.deps import app_state
from modelgate.store import admin_invites as invites
from modelgate.store import organisations as orgs
from modelgate.store.audit import Actor, record
from modelgate.web.render import render
from modelgate.web.sessions import CsrfUser, load_user

router = APIRouter(include_in_schema=False)
ROLE_NAMES = {"owner": "an owner", "admin": "an admin", "member": "a member", "billing": "a billing member"}


def _refused(request: Request, row: invites.InviteRow | None) -> Response:
    now = datetime.now(UTC)
    if row is None:
        title, why, code = "Invitation not found", "This invitation link is not valid.", 404
    elif row.deleted_at is not None:
        title, why, code = "Invitation withdrawn", "This invitation was withdrawn by the organisation.", 410
    elif status(row, now) == "accepted":
        title, why, code = (
            "Invitation already used",
            "This invitation was accepted already: it works once.",
            410,
        )
    else:
        title, why, code = "Invitation expired", "This invitation has expired.", 410
    message = f"{why} Ask the person who invited you for a new one."
    return render(
        request, "error.html", {"title": title, "message": message, "back": "/app"}, status_code=code
    )


async def _pending(request: Request, token: str) -> tuple[invites.InviteRow | None, bool]:
    async with app_state(request).db.engine.connect() as conn:
        row = await invites.invite_by_digest(conn, digest=token_digest(token[:200]))
    ok = row is not None and row.deleted_at is None and status(row, datetime.now(UTC)) == "pending"
    return row, ok


@router.get(ACCEPT_PATH + "{token}")
async def invite_page(request: Request, token: str) -> Response:
    row, ok = await _pending(request, token)
    if row is None or not ok:
        return _refused(request, row)
    user = await load_user(request)
    ctx = {
        "invite": row,
        "role": ROLE_NAMES.get(row.role, row.role),
        "path": ACCEPT_PATH + token,
        "other": user is not None and user.email.lower() != row.email.lower(),
    }
    return render(request, "invite.html", ctx)


@router.post(ACCEPT_PATH + "{token}")
async def accept_invite(request: Request, token: str, user: CsrfUser) -> Response:
    row, ok = await _pending(request, token)
    if row is None or not ok:
        return _refused(request, row)
    if user.email.lower() != row.email.lower():
        return RedirectResponse(ACCEPT_PATH + token, status_code=303)
    async with app_state(request).db.engine.begin() as conn:
        if not await invites.claim_invite(conn, invite_id=row.id, account_id=user.account_id):
            claimed = None
        else:
            claimed = row
            if await orgs.org_role(conn, org_id=row.org_id, account_id=user.account_id) is None:
                await orgs.add_org_member(conn, org_id=row.org_id, account_id=user.account_id, role=row.role)
            for project_id, role in row.projects:
                await orgs.add_project_member(
                    conn, project_id=project_id, account_id=user.account_id, role=role
                )
            ip = request.client.host if request.client else None
            await record(
                conn,
                org_id=row.org_id,
                type="invite.accepted",
                actor=Actor(user.account_id, user.email, ip=ip),
                resource_id=f"invite_{row.id}",
            )
    if claimed is None:
        async with app_state(request).db.engine.connect() as conn:
            again = await invites.invite_by_digest(conn, digest=token_digest(token[:200]))
        return _refused(request, again)
    # The Projects pages show what they joined (a plain member's team projects are not on /app/keys).
    joined = f"/app/projects/{claimed.projects[0][0]}" if claimed.projects else "/app/projects"
    return RedirectResponse(f"{joined}?saved=joined", status_code=303)
