"""OpenAI's Admin API: a project's model permissions and rate limits
(``/v1/organization/projects/{id}/model_permissions``, ``.../rate_limits``, docs/admin-api.md),
mapped onto modelgate's project allow-list and its requests and tokens per minute.

- **model_permissions**: an allow-list is the project's ``allowed_models``; no list is answered as
  an empty ``deny_list`` (nothing denied). modelgate has no deny-lists: a non-empty one is a 400.
- **rate_limits**: one ``rl_<model>`` per model the project may call (its allow-list, else the
  catalogue), each showing the project's rpm and tpm, which are counted across all its models and
  keys (0: no project limit). Changing any of them changes the project's one limit. The other
  limits OpenAI has (images, audio, per day, batch) have no counterpart: giving one is a 400."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.api import admin_common as common
from modelgate.api.admin_projects import BASE, project_for
from modelgate.api.service_query import int_param, json_response, parse_body, single
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.httpkit.contract import json_body, operation, query
from modelgate.httpkit.deps import AppState, CurrentKey, StateDep, text_parameters
from modelgate.store import budgets as budget_store
from modelgate.store import organisations as orgs
from modelgate.wire.admin import ModelPermissionsUpdate, RateLimitUpdate

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
# The project's columns under OpenAI's names (in the audit log's ``changes_requested``).
OPENAI_NAMES = {"rpm": "max_requests_per_1_minute", "tpm": "max_tokens_per_1_minute"}
UNSUPPORTED_LIMITS = (
    "max_images_per_1_minute",
    "max_audio_megabytes_per_1_minute",
    "max_requests_per_1_day",
    "batch_1_day_max_input_tokens",
)


def permissions_object(allowed: list[str] | None) -> dict[str, Any]:
    if allowed is None:
        return {"object": "project.model_permissions", "mode": "deny_list", "model_ids": []}
    return {"object": "project.model_permissions", "mode": "allow_list", "model_ids": list(allowed)}


async def _apply(
    state: AppState, request: Request, ident: CurrentKey, project: int, event: tuple[str, str], **values: Any
) -> orgs.ProjectInfo:
    """Change the project, record ``event`` (audit type, resource id) with the changes, and drop
    the project's keys from the caches (they carry its list and limits)."""
    async with state.db.engine.begin() as conn:
        await common.may_manage_project(conn, ident, project)
        await orgs.update_project(conn, project_id=project, **values)
        info = await orgs.project_of(conn, project_id=project)
        keys = await budget_store.keys_under(
            conn, org_id=ident.account_id, project_id=project, member_id=None
        )
        await common.record(
            conn,
            ident,
            request,
            event[0],
            project_id=project,
            resource_id=event[1],
            details={"changes_requested": {OPENAI_NAMES.get(k, k): v for k, v in values.items()}},
        )
    for key_id in keys:
        await state.keys.revoke(key_id=key_id)
    assert info is not None
    return info


async def _info(state: AppState, project: int) -> orgs.ProjectInfo:
    async with state.db.engine.connect() as conn:
        info = await orgs.project_of(conn, project_id=project)
    assert info is not None
    return info


@router.get(BASE + "/{project_id}/model_permissions")
async def get_model_permissions(ident: CurrentKey, state: StateDep, project_id: str) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    return json_response(permissions_object((await _info(state, found.id)).allowed_models))


@router.post(
    BASE + "/{project_id}/model_permissions", openapi_extra=operation(body=json_body(ModelPermissionsUpdate))
)
async def set_model_permissions(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    body = await parse_body(request, ModelPermissionsUpdate)
    if body.mode == "allow_list":
        allowed: list[str] | None = list(dict.fromkeys(body.model_ids))
    elif body.mode == "deny_list" and not body.model_ids:
        allowed = None
    elif body.mode == "deny_list":
        raise InvalidRequestError(
            "modelgate keeps allow-lists only: give mode allow_list (or an empty deny_list for every model)",
            param="mode",
        )
    else:
        raise InvalidRequestError("mode must be allow_list or deny_list", param="mode")
    event = ("project.updated", f"proj_{found.id}")
    info = await _apply(state, request, ident, found.id, event, allowed_models=allowed)
    return json_response(permissions_object(info.allowed_models))


@router.delete(BASE + "/{project_id}/model_permissions")
async def delete_model_permissions(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    """Drop the project's allow-list: every model the gateway serves is allowed again."""
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    await _apply(
        state, request, ident, found.id, ("project.updated", f"proj_{found.id}"), allowed_models=None
    )
    return json_response({"object": "project.model_permissions.deleted", "deleted": True})


def _models(state: AppState, info: orgs.ProjectInfo) -> list[str]:
    if info.allowed_models is not None:
        return sorted(set(info.allowed_models))
    return sorted({m.id for m in state.catalog.models})


def rate_limit_object(model: str, info: orgs.ProjectInfo) -> dict[str, Any]:
    return {
        "object": "project.rate_limit",
        "id": f"rl_{model}",
        "model": model,
        "max_requests_per_1_minute": info.rpm or 0,
        "max_tokens_per_1_minute": info.tpm or 0,
    }


@router.get(
    BASE + "/{project_id}/rate_limits",
    openapi_extra=operation(
        params=[
            query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
            query("after", {"type": "string", "maxLength": 300}),
            query("before", {"type": "string", "maxLength": 300}),
        ]
    ),
)
async def list_rate_limits(request: Request, ident: CurrentKey, state: StateDep, project_id: str) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    limit = int_param(request, "limit", default=100, low=1, high=1000)
    after, before = single(request, "after"), single(request, "before")
    info = await _info(state, found.id)
    items = [rate_limit_object(m, info) for m in _models(state, info)]
    ids = [i["id"] for i in items]
    if after is not None:
        items = items[ids.index(after) + 1 :] if after in ids else []
    if before is not None:
        shown = [i["id"] for i in items]
        items = items[: shown.index(before)][-limit:] if before in shown else []
    return json_response(common.page(items, limit))


@router.post(
    BASE + "/{project_id}/rate_limits/{rate_limit_id:path}",
    openapi_extra=operation(body=json_body(RateLimitUpdate)),
)
async def update_rate_limit(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str, rate_limit_id: str
) -> Response:
    common.admin_caller(ident)
    found = await project_for(state, ident, project_id)
    body = await parse_body(request, RateLimitUpdate)
    info = await _info(state, found.id)
    model = rate_limit_id.removeprefix("rl_")
    if not rate_limit_id.startswith("rl_") or model not in _models(state, info):
        raise NotFoundError(
            f"No rate limit {rate_limit_id[:300]!r} in this project",
            param="rate_limit_id",
            code="rate_limit_not_found",
        )
    for name in UNSUPPORTED_LIMITS:
        if getattr(body, name) is not None:
            raise InvalidRequestError(
                f"modelgate limits a project's requests and tokens per minute only; {name} is not supported",
                param=name,
            )
    changes: dict[str, int] = {}
    if body.max_requests_per_1_minute is not None:
        changes["rpm"] = body.max_requests_per_1_minute
    if body.max_tokens_per_1_minute is not None:
        changes["tpm"] = body.max_tokens_per_1_minute
    if changes:
        info = await _apply(state, request, ident, found.id, ("rate_limit.updated", rate_limit_id), **changes)
    return json_response(rate_limit_object(model, info))
