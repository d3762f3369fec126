"""OpenAI's Admin API: the organisation's users (``/v1/organization/users``, docs/admin-api.md).

A user is a member of the key's organisation, named ``user_<account id>``; its ``role`` is
modelgate's organisation role (owner, admin, member, billing); OpenAI's ``reader`` is taken as
``member``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.api import admin_common as common
from modelgate.api.service_query import json_response, parse_body
from modelgate.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from modelgate.httpkit.contract import json_body, operation, query
from modelgate.httpkit.deps import CurrentKey, StateDep, text_parameters
from modelgate.store import admin_directory as directory
from modelgate.store import budgets as budget_store
from modelgate.store import organisations as orgs
from modelgate.wire.admin import UserRoleUpdate

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
BASE = "/v1/organization/users"


async def _user(conn: object, org_id: int, raw: str) -> directory.MemberRow:
    account = common.parse_id(raw, "user", param="user_id")
    row = await directory.org_user(conn, org_id=org_id, account_id=account)  # type: ignore[arg-type]
    if row is None:
        raise NotFoundError(
            f"No user {raw[:60]!r} in this organisation", param="user_id", code="user_not_found"
        )
    return row


@router.get(
    BASE,
    openapi_extra=operation(
        params=[*common.LIST_PARAMS, query("emails", {"type": "string", "maxLength": 320}, many=True)]
    ),
)
async def list_users(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    common.admin_caller(ident)
    limit, after = common.page_after(request, "user")
    emails = request.query_params.getlist("emails") or None
    if emails is not None and (len(emails) > 100 or any(len(e) > 320 for e in emails)):
        raise InvalidRequestError("at most 100 emails of at most 320 characters", param="emails")
    async with state.db.engine.connect() as conn:
        rows = await directory.org_users_page(
            conn, org_id=ident.account_id, after=after, limit=limit + 1, emails=emails
        )
    return json_response(common.page([common.user_object(r) for r in rows], limit))


@router.get(BASE + "/{user_id}")
async def retrieve_user(ident: CurrentKey, state: StateDep, user_id: str) -> Response:
    common.admin_caller(ident)
    async with state.db.engine.connect() as conn:
        row = await _user(conn, ident.account_id, user_id)
    return json_response(common.user_object(row))


@router.post(BASE + "/{user_id}", openapi_extra=operation(body=json_body(UserRoleUpdate)))
async def modify_user(request: Request, ident: CurrentKey, state: StateDep, user_id: str) -> Response:
    common.admin_caller(ident)
    common.require_manager(ident, "changing members' roles")
    body = await parse_body(request, UserRoleUpdate)
    role = "member" if body.role == "reader" else body.role
    if role not in orgs.ORG_ROLES:
        raise InvalidRequestError(
            f"role must be one of {', '.join(orgs.ORG_ROLES)} (or reader)", param="role"
        )
    if "owner" in (role,) and ident.org_role != "owner":
        raise PermissionDeniedError("Your role does not allow naming owners.", code="role_forbidden")
    async with state.db.engine.begin() as conn:
        found = await _user(conn, ident.account_id, user_id)
        if found.role == "owner" and role != "owner":
            if ident.org_role != "owner":
                raise PermissionDeniedError(
                    "Your role does not allow changing owners.", code="role_forbidden"
                )
            if await directory.count_owners(conn, org_id=ident.account_id) <= 1:
                raise InvalidRequestError("An organisation keeps at least one owner", param="role")
        await orgs.add_org_member(conn, org_id=ident.account_id, account_id=found.account_id, role=role)
        await common.record(
            conn,
            ident,
            request,
            "user.updated",
            resource_id=user_id,
            details={"changes_requested": {"role": role}},
        )
        keys = await budget_store.keys_under(
            conn, org_id=ident.account_id, project_id=None, member_id=found.account_id
        )
        row = await _user(conn, ident.account_id, user_id)
    for key_id in keys:
        await state.keys.revoke(key_id=key_id)
    return json_response(common.user_object(row))


@router.delete(BASE + "/{user_id}")
async def delete_user(request: Request, ident: CurrentKey, state: StateDep, user_id: str) -> Response:
    """Take a person out of the organisation and its projects (their keys in it stop working)."""
    common.admin_caller(ident)
    common.require_manager(ident, "removing members")
    async with state.db.engine.begin() as conn:
        found = await _user(conn, ident.account_id, user_id)
        if found.role == "owner":
            if ident.org_role != "owner":
                raise PermissionDeniedError(
                    "Your role does not allow removing owners.", code="role_forbidden"
                )
            if await directory.count_owners(conn, org_id=ident.account_id) <= 1:
                raise InvalidRequestError("An organisation keeps at least one owner", param="user_id")
        keys = await budget_store.keys_under(
            conn, org_id=ident.account_id, project_id=None, member_id=found.account_id
        )
        await directory.remove_org_member(conn, org_id=ident.account_id, account_id=found.account_id)
        await directory.disable_keys(conn, key_ids=keys)
        await common.record(conn, ident, request, "user.deleted", resource_id=user_id)
    for key_id in keys:
        await state.keys.revoke(key_id=key_id)
    return json_response({"object": "organization.user.deleted", "id": user_id, "deleted": True})
