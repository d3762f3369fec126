"""OpenAI's Admin API: invitations into the organisation (``/v1/organization/invites``,
docs/admin-api.md). An invite is a one-time link (``/app/invite/<token>``, ``web/invite.py``) with
a role and optional projects; its token is kept hashed and expires after ``INVITE_TTL``. It is
mailed when SMTP is configured; otherwise (or if delivery fails) the answer carries the link in
the modelgate extension field ``modelgate_accept_url`` for the inviter to pass on."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.accounts.passwords import EMAIL_RE
from modelgate.accounts.service import normalise_email
from modelgate.api import admin_common as common
from modelgate.api.service_query import json_response, parse_body
from modelgate.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.deps import AppState, CurrentKey, StateDep, text_parameters
from modelgate.mail.messages import link, send_invitation
from modelgate.mail.sender import Mailer
from modelgate.store import admin_directory as directory
from modelgate.store import admin_invites as invites
from modelgate.store import organisations as orgs
from modelgate.store.accounts import account_id_by_email, get_account
from modelgate.wire.admin import InviteCreate

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
BASE = "/v1/organization/invites"
INVITE_TTL = timedelta(days=7)
ACCEPT_PATH = "/app/invite/"
# OpenAI's invite roles are owner and reader; modelgate's organisation roles may be given too.
INVITE_ROLES = {
    "owner": "owner",
    "reader": "member",
    "admin": "admin",
    "member": "member",
    "billing": "billing",
}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def status(row: invites.InviteRow, now: datetime) -> str:
    if row.accepted_at is not None:
        return "accepted"
    return "expired" if row.expires_at <= now else "pending"


def invite_object(row: invites.InviteRow, now: datetime | None = None) -> dict[str, Any]:
    return {
        "object": "organization.invite",
        "id": f"invite_{row.id}",
        "email": row.email,
        "role": "owner" if row.role == "owner" else "reader",
        "modelgate_role": row.role,
        "status": status(row, now or datetime.now(UTC)),
        "created_at": common.ts(row.created_at),
        "expires_at": common.ts(row.expires_at),
        "accepted_at": common.ts(row.accepted_at),
        "projects": [{"id": f"proj_{p}", "role": r} for p, r in row.projects],
    }


async def _projects(conn: Any, ident: Any, body: InviteCreate) -> list[tuple[int, str]]:
    chosen: dict[int, str] = {}
    for p in body.projects or []:
        pid = common.parse_id(p.id, "proj", param="projects")
        found = common.visible(ident, await directory.project_row(conn, project_id=pid), p.id)
        if found.archived_at is not None:
            raise InvalidRequestError(f"Project {p.id} is archived", param="projects")
        if p.role not in orgs.PROJECT_ROLES:
            raise InvalidRequestError("a project role must be owner or member", param="projects")
        chosen[found.id] = p.role
    return list(chosen.items())


@router.get(BASE, openapi_extra=operation(params=common.LIST_PARAMS))
async def list_invites(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    common.admin_caller(ident)
    common.require_manager(ident, "reading invites")
    limit, after = common.page_after(request, "invite")
    async with state.db.engine.connect() as conn:
        rows = await invites.invites_page(conn, org_id=ident.account_id, after=after, limit=limit + 1)
    now = datetime.now(UTC)
    return json_response(common.page([invite_object(r, now) for r in rows], limit))


@router.post(BASE, openapi_extra=operation(body=json_body(InviteCreate)))
async def create_invite(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    """Invite someone by email; mailed when SMTP is configured, else the link is answered."""
    common.admin_caller(ident)
    common.require_manager(ident, "inviting members")
    body = await parse_body(request, InviteCreate)
    role = INVITE_ROLES.get(body.role)
    if role is None:
        raise InvalidRequestError("role must be owner or reader (or admin, member, billing)", param="role")
    if role == "owner" and ident.org_role != "owner":
        raise PermissionDeniedError("Your role does not allow naming owners.", code="role_forbidden")
    email = normalise_email(body.email)
    if not EMAIL_RE.match(email):
        raise InvalidRequestError("email must be an email address, like name@example.com", param="email")
    token = secrets.token_urlsafe(32)
    async with state.db.engine.begin() as conn:
        projects = await _projects(conn, ident, body)
        existing = await account_id_by_email(conn, email=email)
        if existing is not None and await orgs.org_role(conn, org_id=ident.account_id, account_id=existing):
            raise InvalidRequestError(f"{email} is already a member of this organisation", param="email")
        invite_id = await invites.create_invite(
            conn,
            org_id=ident.account_id,
            email=email,
            role=role,
            projects=projects,
            digest=token_digest(token),
            invited_by=ident.member_id,
            expires_at=datetime.now(UTC) + INVITE_TTL,
        )
        await common.record(
            conn,
            ident,
            request,
            "invite.sent",
            resource_id=f"invite_{invite_id}",
            details={"data": {"email": email, "role": role}},
        )
        row = await invites.invite_by_digest(conn, digest=token_digest(token))
        inviter = await get_account(conn, account_id=ident.member_id) if ident.member_id else None
    assert row is not None
    answer = invite_object(row)
    url = link(state.settings.public_url or str(request.base_url), ACCEPT_PATH + token)
    mailed = await _mail(
        state, to=email, inviter=inviter.email if inviter else "An administrator", row=row, url=url
    )
    if not mailed:
        answer["modelgate_accept_url"] = url
    return json_response(answer)


async def _mail(state: AppState, *, to: str, inviter: str, row: invites.InviteRow, url: str) -> bool:
    mailer = state.extras.get("mailer")
    if not isinstance(mailer, Mailer) or not mailer.configured:
        return False
    return await send_invitation(mailer, to=to, inviter=inviter, organisation=row.org_name, accept_url=url)


async def _invite(conn: Any, ident: CurrentKey, raw: str) -> invites.InviteRow:
    found = await invites.invite(
        conn, org_id=ident.account_id, invite_id=common.parse_id(raw, "invite", param="invite_id")
    )
    if found is None:
        raise NotFoundError(f"No invite with id {raw[:60]!r}", param="invite_id", code="invite_not_found")
    return found


@router.get(BASE + "/{invite_id}")
async def retrieve_invite(ident: CurrentKey, state: StateDep, invite_id: str) -> Response:
    common.admin_caller(ident)
    common.require_manager(ident, "reading invites")
    async with state.db.engine.connect() as conn:
        row = await _invite(conn, ident, invite_id)
    return json_response(invite_object(row))


@router.delete(BASE + "/{invite_id}")
async def delete_invite(request: Request, ident: CurrentKey, state: StateDep, invite_id: str) -> Response:
    """Withdraw an invite: its link stops working. An accepted invite cannot be deleted."""
    common.admin_caller(ident)
    common.require_manager(ident, "deleting invites")
    async with state.db.engine.begin() as conn:
        row = await _invite(conn, ident, invite_id)
        if row.accepted_at is not None:
            raise InvalidRequestError("An accepted invite cannot be deleted", param="invite_id")
        await invites.delete_invite(conn, invite_id=row.id)
        await common.record(conn, ident, request, "invite.deleted", resource_id=invite_id)
    return json_response({"object": "organization.invite.deleted", "id": invite_id, "deleted": True})
