"""OpenAI's Admin API: a project's API keys and service accounts
(``/v1/organization/projects/{id}/api_keys``, ``.../service_accounts``, docs/admin-api.md).

A project API key is one of modelgate's inference keys of the project (``key_<id>``), owned by a
member (``user``) or a service account; its value is never shown again (``redacted_value``).
``owner_project_access`` is ``active`` while the key works and ``inactive`` once disabled (its
member removed, its service account deleted, its project archived, or disabled by hand). A
service account (``svc_acct_<id>``) owns inference keys of its project and nothing else;
creating one returns its first key, shown once; deleting it disables its keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.accounts.service import create_key
from modelgate.api import admin_common as common
from modelgate.api.admin_projects import BASE, project_for
from modelgate.api.service_query import json_response, parse_body, single
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.httpkit.contract import json_body, operation, query
from modelgate.httpkit.deps import CurrentKey, StateDep, text_parameters
from modelgate.store import admin_keys as keys
from modelgate.wire.admin import ServiceAccountCreate, ServiceAccountKeyCreate, ServiceAccountUpdate

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
ACCESS = {"active": False, "inactive": True, "any": None}
SA_ROLES = ("owner", "member")


def redacted(prefix: str) -> str:
    return f"{prefix}...****"


def key_object(k: keys.KeyRow, accounts: dict[int, keys.ServiceAccountRow]) -> dict[str, Any]:
    owner: dict[str, Any]
    sa = accounts.get(k.service_account_id) if k.service_account_id is not None else None
    if sa is not None:
        owner = {"type": "service_account", "service_account": _sa_owner(sa)}
    else:
        email = k.member_email or ""
        owner = {
            "type": "user",
            "user": {
                "id": f"user_{k.member_id}",
                "email": email,
                "name": email,
                "created_at": common.ts(k.member_added_at or k.created_at),
                "role": k.member_role or "member",
            },
        }
    return {
        "object": "organization.project.api_key",
        "id": f"key_{k.id}",
        "name": k.name or "",
        "redacted_value": redacted(k.prefix),
        "created_at": common.ts(k.created_at),
        "last_used_at": common.ts(k.last_used_at),
        "owner_project_access": "inactive" if k.disabled else "active",
        "owner": owner,
    }


def _sa_owner(sa: keys.ServiceAccountRow) -> dict[str, Any]:
    return {
        "id": f"svc_acct_{sa.id}",
        "name": sa.name,
        "created_at": common.ts(sa.created_at),
        "role": sa.role,
    }


def sa_object(sa: keys.ServiceAccountRow) -> dict[str, Any]:
    return {"object": "organization.project.service_account", **_sa_owner(sa)}


async def _objects(conn: Any, rows: list[keys.KeyRow]) -> list[dict[str, Any]]:
    ids = {k.service_account_id for k in rows if k.service_account_id is not None}
    accounts = await keys.service_accounts_by_id(conn, ids=ids)
    return [key_object(k, accounts) for k in rows]


# -- project API keys ---------------------------------------------------------------------------


@router.get(
    BASE + "/{project_id}/api_keys",
    openapi_extra=operation(
        params=[*common.LIST_PARAMS, query("owner_project_access", {"type": "string", "enum": list(ACCESS)})]
    ),
)
async def list_project_keys(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    limit, after = common.page_after(request, "key")
    access = single(request, "owner_project_access") or "any"
    if access not in ACCESS:
        raise InvalidRequestError(
            "owner_project_access must be active, inactive or any", param="owner_project_access"
        )
    async with state.db.engine.connect() as conn:
        rows = await keys.project_keys_page(
            conn,
            org_id=ident.account_id,
            project_id=found.id,
            after=after,
            limit=limit + 1,
            disabled=ACCESS[access],
        )
        objects = await _objects(conn, rows)
    return json_response(common.page(objects, limit))


async def _project_key(conn: Any, ident: CurrentKey, project: int, raw: str) -> keys.KeyRow:
    key_id = common.parse_id(raw, "key", param="api_key_id")
    rows = await keys.project_keys_page(
        conn, org_id=ident.account_id, project_id=project, after=0, limit=1, key_id=key_id
    )
    if not rows:
        raise NotFoundError(
            f"No API key {raw[:60]!r} in this project", param="api_key_id", code="key_not_found"
        )
    return rows[0]


@router.get(BASE + "/{project_id}/api_keys/{api_key_id}")
async def retrieve_project_key(
    ident: CurrentKey, state: StateDep, project_id: str, api_key_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    async with state.db.engine.connect() as conn:
        row = await _project_key(conn, ident, found.id, api_key_id)
        (obj,) = await _objects(conn, [row])
    return json_response(obj)


@router.delete(BASE + "/{project_id}/api_keys/{api_key_id}")
async def delete_project_key(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str, api_key_id: str
) -> Response:
    """Delete a member's key (as OpenAI: a service account's keys go with the service account)."""
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, found.id)
        row = await _project_key(conn, ident, found.id, api_key_id)
        if row.service_account_id is not None:
            raise InvalidRequestError(
                "A service account's key is deleted with its service account", param="api_key_id"
            )
        await keys.delete_key(conn, key_id=row.id)
        await common.record(
            conn, ident, request, "api_key.deleted", project_id=found.id, resource_id=api_key_id
        )
    await state.keys.revoke(key_id=row.id)
    return json_response(
        {"object": "organization.project.api_key.deleted", "id": api_key_id, "deleted": True}
    )


# -- service accounts ---------------------------------------------------------------------------


@router.get(BASE + "/{project_id}/service_accounts", openapi_extra=operation(params=common.LIST_PARAMS))
async def list_service_accounts(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    limit, after = common.page_after(request, "svc_acct")
    async with state.db.engine.connect() as conn:
        rows = await keys.service_accounts_page(conn, project_id=found.id, after=after, limit=limit + 1)
    return json_response(common.page([sa_object(r) for r in rows], limit))


async def _new_key(
    conn: Any,
    request: Request,
    ident: CurrentKey,
    sa: keys.ServiceAccountRow,
    name: str | None,
    expires_in: int | None = None,
) -> dict[str, Any]:
    made = await create_key(
        conn,
        account_id=ident.account_id,
        name=name or sa.name,
        project_id=sa.project_id,
        service_account_id=sa.id,
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in) if expires_in else None,
    )
    rows = await keys.project_keys_page(
        conn, org_id=ident.account_id, project_id=sa.project_id, after=0, limit=1, key_id=made.key_id
    )
    await common.record(
        conn,
        ident,
        request,
        "api_key.created",
        project_id=sa.project_id,
        resource_id=f"key_{made.key_id}",
        details={"data": {"scopes": [], "service_account": f"svc_acct_{sa.id}"}},
    )
    return {
        "object": "organization.project.service_account.api_key",
        "id": f"key_{made.key_id}",
        "name": rows[0].name or "",
        "value": made.key,
        "created_at": common.ts(rows[0].created_at),
    }


@router.post(
    BASE + "/{project_id}/service_accounts", openapi_extra=operation(body=json_body(ServiceAccountCreate))
)
async def create_service_account(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    """A service account in the project, with its first inference key (shown once) unless
    ``create_service_account_only``."""
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    body = await parse_body(request, ServiceAccountCreate)
    if found.archived_at is not None:
        raise InvalidRequestError("The project is archived", param="project_id")
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, found.id)
        sa_id = await keys.create_service_account(
            conn, org_id=ident.account_id, project_id=found.id, name=body.name
        )
        sa = await keys.service_account(conn, project_id=found.id, account_id=sa_id)
        assert sa is not None
        await common.record(
            conn,
            ident,
            request,
            "service_account.created",
            project_id=found.id,
            resource_id=f"svc_acct_{sa_id}",
            details={"data": {"role": "member"}},
        )
        api_key = (
            None
            if body.create_service_account_only
            else await _new_key(conn, request, ident, sa, "Secret Key")
        )
    return json_response({**sa_object(sa), "api_key": api_key})


async def _sa(conn: Any, project: int, raw: str) -> keys.ServiceAccountRow:
    sa_id = common.parse_id(raw, "svc_acct", param="service_account_id")
    found = await keys.service_account(conn, project_id=project, account_id=sa_id)
    if found is None:
        raise NotFoundError(
            f"No service account {raw[:60]!r} in this project",
            param="service_account_id",
            code="service_account_not_found",
        )
    return found


@router.get(BASE + "/{project_id}/service_accounts/{service_account_id}")
async def retrieve_service_account(
    ident: CurrentKey, state: StateDep, project_id: str, service_account_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    async with state.db.engine.connect() as conn:
        sa = await _sa(conn, found.id, service_account_id)
    return json_response(sa_object(sa))


@router.post(
    BASE + "/{project_id}/service_accounts/{service_account_id}",
    openapi_extra=operation(body=json_body(ServiceAccountUpdate)),
)
async def update_service_account(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str, service_account_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    body = await parse_body(request, ServiceAccountUpdate)
    if body.role is not None and body.role not in SA_ROLES:
        raise InvalidRequestError("role must be owner or member", param="role")
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, found.id)
        sa = await _sa(conn, found.id, service_account_id)
        await keys.update_service_account(conn, account_id=sa.id, name=body.name, role=body.role)
        changes = {k: v for k, v in (("name", body.name), ("role", body.role)) if v is not None}
        await common.record(
            conn,
            ident,
            request,
            "service_account.updated",
            project_id=found.id,
            resource_id=service_account_id,
            details={"changes_requested": changes},
        )
        sa = await _sa(conn, found.id, service_account_id)
    return json_response(sa_object(sa))


@router.delete(BASE + "/{project_id}/service_accounts/{service_account_id}")
async def delete_service_account(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str, service_account_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, found.id)
        sa = await _sa(conn, found.id, service_account_id)
        disabled = await keys.delete_service_account(conn, account_id=sa.id)
        await common.record(
            conn,
            ident,
            request,
            "service_account.deleted",
            project_id=found.id,
            resource_id=service_account_id,
        )
    for key_id in disabled:
        await state.keys.revoke(key_id=key_id)
    return json_response(
        {"object": "organization.project.service_account.deleted", "id": service_account_id, "deleted": True}
    )


@router.post(
    BASE + "/{project_id}/service_accounts/{service_account_id}/api_keys",
    openapi_extra=operation(body=json_body(ServiceAccountKeyCreate, required=False)),
)
async def create_service_account_key(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str, service_account_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    body = await parse_body(request, ServiceAccountKeyCreate, required=False)
    if found.archived_at is not None:
        raise InvalidRequestError("The project is archived", param="project_id")
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, found.id)
        sa = await _sa(conn, found.id, service_account_id)
        answer = await _new_key(conn, request, ident, sa, body.name, body.expires_in_seconds)
    return json_response(answer)
