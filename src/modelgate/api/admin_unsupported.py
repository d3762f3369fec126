"""OpenAI's Admin API operations modelgate has no concept for (docs/admin-api.md, "Not served"):
each answers a 400 in OpenAI's error envelope (``ErrorResponse``, ``code``
``unsupported_by_modelgate``) that says why and what modelgate has instead, never a 404 that
reads as a typo, never a 5xx."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.api import admin_common as common
from modelgate.errors import InvalidRequestError
from modelgate.httpkit.deps import CurrentKey, text_parameters

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
ORG = "/v1/organization"
PROJECT = ORG + "/projects/{project_id}"

_CERTS = "modelgate does not check client certificates (mutual TLS belongs to the proxy in front of it)"
_RETENTION = "modelgate's retention is set per key (limit_retention) and by the operator for stored responses"
_GROUPS = (
    "modelgate keeps no groups: SCIM groups from the identity provider map onto organisation roles "
    "(MODELGATE_GROUP_RULES, docs/identity.md)"
)
_ROLES = (
    "modelgate's roles are fixed (GET /organization/roles lists them): organisation owner, admin, "
    "member, billing; project owner, member (set them with POST /organization/users/{id} and "
    ".../projects/{id}/users/{id})"
)
_TOOLS = "modelgate runs no hosted tools"

# (path, methods, why): every operation of OpenAI's document that modelgate does not serve and that
# no other part of modelgate builds (usage, costs, audit logs, spend limits and alerts are served).
UNSUPPORTED: list[tuple[str, tuple[str, ...], str]] = [
    (ORG + "/certificates", ("GET", "POST"), _CERTS),
    (ORG + "/certificates/activate", ("POST",), _CERTS),
    (ORG + "/certificates/deactivate", ("POST",), _CERTS),
    (ORG + "/certificates/{certificate_id}", ("GET", "POST", "DELETE"), _CERTS),
    (PROJECT + "/certificates", ("GET",), _CERTS),
    (PROJECT + "/certificates/activate", ("POST",), _CERTS),
    (PROJECT + "/certificates/deactivate", ("POST",), _CERTS),
    (ORG + "/data_retention", ("GET", "POST"), _RETENTION),
    (PROJECT + "/data_retention", ("GET", "POST"), _RETENTION),
    (PROJECT + "/hosted_tool_permissions", ("GET", "POST"), _TOOLS),
    (ORG + "/groups", ("GET", "POST"), _GROUPS),
    (ORG + "/groups/{group_id}", ("GET", "POST", "DELETE"), _GROUPS),
    (ORG + "/groups/{group_id}/roles", ("GET", "POST"), _GROUPS),
    (ORG + "/groups/{group_id}/roles/{role_id}", ("GET", "DELETE"), _GROUPS),
    (ORG + "/groups/{group_id}/users", ("GET", "POST"), _GROUPS),
    (ORG + "/groups/{group_id}/users/{user_id}", ("GET", "DELETE"), _GROUPS),
    (PROJECT + "/groups", ("GET", "POST"), _GROUPS),
    (PROJECT + "/groups/{group_id}", ("GET", "DELETE"), _GROUPS),
    (ORG + "/roles", ("POST",), _ROLES),
    (ORG + "/roles/{role_id}", ("POST", "DELETE"), _ROLES),
    (ORG + "/users/{user_id}/roles", ("POST",), _ROLES),
    (ORG + "/users/{user_id}/roles/{role_id}", ("GET", "DELETE"), _ROLES),
]


def _refuse(why: str) -> Callable[[Request, CurrentKey], Awaitable[Response]]:
    async def refuse(request: Request, ident: CurrentKey) -> Response:
        common.admin_caller(ident)
        raise InvalidRequestError(
            f"{request.method} {request.url.path[:200]} is not supported: {why}. See docs/admin-api.md.",
            code="unsupported_by_modelgate",
        )

    return refuse


for _path, _methods, _why in UNSUPPORTED:
    router.add_api_route(_path, _refuse(_why), methods=list(_methods), include_in_schema=False)
