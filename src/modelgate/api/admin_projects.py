"""OpenAI's Admin API: projects and project users (``/v1/organization/projects/...``,
docs/admin-api.md). Paths, parameters and objects as OpenAI's document defines them; a project is
one of the key's organisation's projects, named ``proj_<id>``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.accounts.service import get_or_create_account, normalise_email
from modelgate.api import admin_common as common
from modelgate.api.service_query import json_response, parse_body, single
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.httpkit.contract import json_body, operation, query
from modelgate.httpkit.deps import AppState, CurrentKey, StateDep, text_parameters
from modelgate.store import admin_directory as directory
from modelgate.store import organisations as orgs
from modelgate.wire.admin import ProjectCreate, ProjectUpdate, ProjectUserCreate, ProjectUserUpdate

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
BASE = "/v1/organization/projects"
PROJECT_ROLES = ", ".join(orgs.PROJECT_ROLES)


async def project_for(state: AppState, ident: CurrentKey, raw: str) -> directory.ProjectRow:
    async with state.db.engine.connect() as conn:
        row = await directory.project_row(conn, project_id=common.parse_id(raw, "proj", param="project_id"))
    return common.visible(ident, row, raw)


@router.get(
    BASE,
    openapi_extra=operation(params=[*common.LIST_PARAMS, query("include_archived", {"type": "boolean"})]),
)
async def list_projects(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    common.admin_caller(ident)
    limit, after = common.page_after(request, "proj")
    archived = single(request, "include_archived")
    if archived not in (None, "true", "false"):
        raise InvalidRequestError("include_archived must be true or false", param="include_archived")
    async with state.db.engine.connect() as conn:
        rows = await directory.projects_page(
            conn, org_id=ident.account_id, after=after, limit=limit + 1, include_archived=archived == "true"
        )
    if ident.scope_project is not None:
        rows = [r for r in rows if r.id == ident.scope_project]
    return json_response(common.page([common.project_object(r) for r in rows], limit))


@router.post(BASE, openapi_extra=operation(body=json_body(ProjectCreate)))
async def create_project(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    common.admin_caller(ident)
    common.require_manager(ident, "creating projects")
    body = await parse_body(request, ProjectCreate)
    async with state.db.engine.begin() as conn:
        pid = await orgs.create_project(
            conn, org_id=ident.account_id, name=body.name, owner_id=ident.member_id
        )
        await common.record(
            conn,
            ident,
            request,
            "project.created",
            project_id=pid,
            resource_id=f"proj_{pid}",
            details={"data": {"name": body.name}},
        )
        row = await directory.project_row(conn, project_id=pid)
    assert row is not None
    return json_response(common.project_object(row))


@router.get(BASE + "/{project_id}")
async def retrieve_project(ident: CurrentKey, state: StateDep, project_id: str) -> Response:
    common.admin_caller(ident)
    return json_response(common.project_object(await project_for(state, ident, project_id)))


@router.post(BASE + "/{project_id}", openapi_extra=operation(body=json_body(ProjectUpdate)))
async def modify_project(request: Request, ident: CurrentKey, state: StateDep, project_id: str) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    body = await parse_body(request, ProjectUpdate)
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, found.id)
        if body.name is not None:
            await orgs.update_project(conn, project_id=found.id, name=body.name)
        await common.record(
            conn,
            ident,
            request,
            "project.updated",
            project_id=found.id,
            resource_id=project_id,
            details={"changes_requested": {"title": body.name} if body.name is not None else {}},
        )
        row = await directory.project_row(conn, project_id=found.id)
    assert row is not None
    return json_response(common.project_object(row))


@router.post(BASE + "/{project_id}/archive", openapi_extra=operation(body=json_body(required=False)))
async def archive_project(request: Request, ident: CurrentKey, state: StateDep, project_id: str) -> Response:
    """Archive a project: its keys are disabled; it is listed only with ``include_archived``."""
    common.admin_caller(ident)
    common.require_manager(ident, "archiving projects")
    found = await project_for(state, ident, project_id)
    if found.is_default:
        raise InvalidRequestError("The default project cannot be archived", param="project_id")
    async with state.db.engine.begin() as conn:
        keys = await directory.archive_project(conn, project_id=found.id)
        await common.record(
            conn, ident, request, "project.archived", project_id=found.id, resource_id=project_id
        )
        row = await directory.project_row(conn, project_id=found.id)
    for key_id in keys:
        await state.keys.revoke(key_id=key_id)
    assert row is not None
    return json_response(common.project_object(row))


@router.get(BASE + "/{project_id}/users", openapi_extra=operation(params=common.LIST_PARAMS))
async def list_project_users(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    limit, after = common.page_after(request, "user")
    async with state.db.engine.connect() as conn:
        rows = await directory.project_users_page(conn, project_id=found.id, after=after, limit=limit + 1)
    return json_response(common.page([common.project_user_object(r) for r in rows], limit))


def _role(role: str | None) -> str:
    if role not in orgs.PROJECT_ROLES:
        raise InvalidRequestError(f"role must be one of {PROJECT_ROLES}", param="role")
    return role


@router.post(BASE + "/{project_id}/users", openapi_extra=operation(body=json_body(ProjectUserCreate)))
async def add_project_user(request: Request, ident: CurrentKey, state: StateDep, project_id: str) -> Response:
    """Add a member of the organisation (``user_id``) or anyone by ``email`` (made a member)."""
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    body = await parse_body(request, ProjectUserCreate)
    role = _role(body.role)
    if (body.user_id is None) == (body.email is None):
        raise InvalidRequestError("give user_id or email", param="user_id")
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, found.id)
        if body.user_id is not None:
            account = common.parse_id(body.user_id, "user", param="user_id")
            if await orgs.org_role(conn, org_id=ident.account_id, account_id=account) is None:
                raise NotFoundError(
                    "No such user in this organisation", param="user_id", code="user_not_found"
                )
        else:
            assert body.email is not None
            account = await get_or_create_account(conn, email=normalise_email(body.email))
            if await orgs.org_role(conn, org_id=ident.account_id, account_id=account) is None:
                await orgs.add_org_member(conn, org_id=ident.account_id, account_id=account, role="member")
        await orgs.add_project_member(conn, project_id=found.id, account_id=account, role=role)
        await common.record(
            conn,
            ident,
            request,
            "user.added",
            project_id=found.id,
            resource_id=f"user_{account}",
            details={"data": {"role": role}},
        )
        row = await directory.project_user(conn, project_id=found.id, account_id=account)
    assert row is not None
    return json_response(common.project_user_object(row))


async def _member(conn: object, project: int, raw: str) -> directory.MemberRow:
    account = common.parse_id(raw, "user", param="user_id")
    row = await directory.project_user(conn, project_id=project, account_id=account)  # type: ignore[arg-type]
    if row is None:
        raise NotFoundError(f"No user {raw[:60]!r} in this project", param="user_id", code="user_not_found")
    return row


@router.get(BASE + "/{project_id}/users/{user_id}")
async def retrieve_project_user(
    ident: CurrentKey, state: StateDep, project_id: str, user_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    async with state.db.engine.connect() as conn:
        row = await _member(conn, found.id, user_id)
    return json_response(common.project_user_object(row))


@router.post(
    BASE + "/{project_id}/users/{user_id}", openapi_extra=operation(body=json_body(ProjectUserUpdate))
)
async def modify_project_user(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str, user_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    body = await parse_body(request, ProjectUserUpdate)
    role = _role(body.role)
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, found.id)
        member = await _member(conn, found.id, user_id)
        await orgs.add_project_member(conn, project_id=found.id, account_id=member.account_id, role=role)
        await common.record(
            conn,
            ident,
            request,
            "user.updated",
            project_id=found.id,
            resource_id=user_id,
            details={"changes_requested": {"role": role}},
        )
        row = await directory.project_user(conn, project_id=found.id, account_id=member.account_id)
    assert row is not None
    return json_response(common.project_user_object(row))


@router.delete(BASE + "/{project_id}/users/{user_id}")
async def delete_project_user(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str, user_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, found.id)
        member = await _member(conn, found.id, user_id)
        await directory.remove_project_member(conn, project_id=found.id, account_id=member.account_id)
        await common.record(conn, ident, request, "user.deleted", project_id=found.id, resource_id=user_id)
    return json_response({"object": "organization.project.user.deleted", "id": user_id, "deleted": True})
