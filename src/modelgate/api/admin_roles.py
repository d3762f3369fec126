"""OpenAI's Admin API: roles, read only (``GET /v1/organization/roles[/{id}]``,
``GET /v1/organization/users/{id}/roles``, docs/admin-api.md). modelgate's organisation roles are
fixed (owner, admin, member, billing: ``role_<name>``); a member holds exactly one, set with
``POST /organization/users/{id}``. Creating, changing, deleting and assigning roles through these
paths is refused (``api/admin_unsupported.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.api import admin_common as common
from modelgate.api.service_query import int_param, json_response, single
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.httpkit.contract import operation, query
from modelgate.httpkit.deps import CurrentKey, StateDep, text_parameters
from modelgate.store import admin_directory as directory

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
ORG = "/v1/organization"
_READ = ["organization.usage.read", "organization.billing.read"]
_MANAGE = ["organization.projects.write", "organization.members.write", "organization.keys.write"]
# name -> (description, permissions): what each of modelgate's roles may do (docs/organisations.md).
ROLES: dict[str, tuple[str, list[str]]] = {
    "owner": (
        "Everything, including naming and removing owners.",
        [*_READ, *_MANAGE, "organization.owners.write"],
    ),
    "admin": ("Manages projects, members, keys and budgets; cannot name owners.", [*_READ, *_MANAGE]),
    "member": (
        "Uses and manages the keys of their own projects only.",
        ["project.keys.write", "project.usage.read"],
    ),
    "billing": ("Reads the whole organisation's billing and usage; changes nothing.", _READ),
}
LIST_PARAMS = [
    query("limit", {"type": "integer", "minimum": 0, "maximum": 1000, "default": 1000}),
    query("after", {"type": "string", "maxLength": 40}),
    query("order", {"type": "string", "enum": ["asc", "desc"]}),
]


def role_object(name: str) -> dict[str, Any]:
    description, permissions = ROLES[name]
    return {
        "object": "role",
        "id": f"role_{name}",
        "name": name,
        "description": description,
        "permissions": permissions,
        "resource_type": "api.organization",
        "predefined_role": True,
    }


def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    limit = int_param(request, "limit", default=1000, low=0, high=1000)
    order = single(request, "order") or "asc"
    if order not in ("asc", "desc"):
        raise InvalidRequestError("order must be asc or desc", param="order")
    if order == "desc":
        items = items[::-1]
    after = single(request, "after")
    if after is not None:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    shown = items[:limit]
    more = len(items) > limit
    return {
        "object": "list",
        "data": shown,
        "has_more": more,
        "next": shown[-1]["id"] if more and shown else None,
    }


@router.get(ORG + "/roles", openapi_extra=operation(params=LIST_PARAMS))
async def list_roles(request: Request, ident: CurrentKey) -> Response:
    common.admin_caller(ident)
    return json_response(_page(request, [role_object(name) for name in ROLES]))


@router.get(ORG + "/roles/{role_id}")
async def retrieve_role(ident: CurrentKey, role_id: str) -> Response:
    common.admin_caller(ident)
    name = role_id.removeprefix("role_")
    if not role_id.startswith("role_") or name not in ROLES:
        raise NotFoundError(f"No role with id {role_id[:60]!r}", param="role_id", code="role_not_found")
    return json_response(role_object(name))


@router.get(ORG + "/users/{user_id}/roles", openapi_extra=operation(params=LIST_PARAMS))
async def list_user_roles(request: Request, ident: CurrentKey, state: StateDep, user_id: str) -> Response:
    """The one organisation role the member holds."""
    common.admin_caller(ident)
    account = common.parse_id(user_id, "user", param="user_id")
    async with state.db.engine.connect() as conn:
        member = await directory.org_user(conn, org_id=ident.account_id, account_id=account)
    if member is None:
        raise NotFoundError(
            f"No user {user_id[:60]!r} in this organisation", param="user_id", code="user_not_found"
        )
    role = {k: v for k, v in role_object(member.role).items() if k != "object"}
    assigned = {
        **role,
        "created_at": common.ts(member.added_at),
        "updated_at": None,
        "created_by": None,
        "created_by_user_obj": None,
        "metadata": None,
        "assignment_sources": [{"principal_id": user_id, "principal_type": "user"}],
    }
    return json_response(_page(request, [assigned]))
