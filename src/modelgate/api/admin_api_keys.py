"""OpenAI's Admin API: admin API keys (``/v1/organization/admin_api_keys``, docs/admin-api.md).

An admin API key is one of modelgate's management keys of the organisation (``key_<id>``): it
administers the organisation with its member's role and cannot call models; an inference key
cannot administer. Listing, creating and deleting them needs an owner's or admin's key; a new key
belongs to the caller's member and is shown once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.accounts.service import create_key
from modelgate.api import admin_common as common
from modelgate.api.admin_keys import redacted
from modelgate.api.service_query import int_param, json_response, parse_body, single
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.httpkit.contract import json_body, operation, query
from modelgate.httpkit.deps import CurrentKey, StateDep, text_parameters
from modelgate.store import admin_keys as keys
from modelgate.wire.admin import AdminKeyCreate

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
BASE = "/v1/organization/admin_api_keys"


def admin_key_object(k: keys.KeyRow) -> dict[str, Any]:
    return {
        "object": "organization.admin_api_key",
        "id": f"key_{k.id}",
        "name": k.name,
        "redacted_value": redacted(k.prefix),
        "created_at": common.ts(k.created_at),
        "expires_at": common.ts(k.expires_at),
        "last_used_at": common.ts(k.last_used_at),
        "owner": {
            "type": "user",
            "object": "organization.user",
            "id": f"user_{k.member_id}",
            "name": k.member_email or "",
            "created_at": common.ts(k.member_added_at or k.created_at),
            "role": k.member_role or "member",
        },
    }


@router.get(
    BASE,
    openapi_extra=operation(
        params=[*common.LIST_PARAMS, query("order", {"type": "string", "enum": ["asc", "desc"]})]
    ),
)
async def list_admin_keys(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    common.admin_caller(ident)
    common.require_manager(ident, "managing admin API keys")
    limit = int_param(request, "limit", default=20, low=1, high=100)
    order = single(request, "order") or "asc"
    if order not in ("asc", "desc"):
        raise InvalidRequestError("order must be asc or desc", param="order")
    raw = single(request, "after")
    after = common.parse_after(raw, "key") if raw is not None else None
    async with state.db.engine.connect() as conn:
        rows = await keys.admin_keys_page(
            conn, org_id=ident.account_id, after=after, limit=limit + 1, newest_first=order == "desc"
        )
    return json_response(common.page([admin_key_object(r) for r in rows], limit))


@router.post(BASE, openapi_extra=operation(body=json_body(AdminKeyCreate)))
async def create_admin_key(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    common.admin_caller(ident)
    common.require_manager(ident, "managing admin API keys")
    body = await parse_body(request, AdminKeyCreate)
    expires = (
        datetime.now(UTC) + timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None
    )
    async with state.db.engine.begin() as conn:
        made = await create_key(
            conn,
            account_id=ident.account_id,
            name=body.name,
            management=True,
            member_id=ident.member_id,
            expires_at=expires,
        )
        rows = await keys.admin_keys_page(
            conn, org_id=ident.account_id, after=None, limit=1, key_id=made.key_id
        )
        await common.record(
            conn,
            ident,
            request,
            "api_key.created",
            resource_id=f"key_{made.key_id}",
            details={"data": {"scopes": ["api.management.read", "api.management.write"]}},
        )
    return json_response({**admin_key_object(rows[0]), "value": made.key})


async def _admin_key(conn: Any, ident: CurrentKey, raw: str) -> keys.KeyRow:
    key_id = common.parse_id(raw, "key", param="key_id")
    rows = await keys.admin_keys_page(conn, org_id=ident.account_id, after=None, limit=1, key_id=key_id)
    if not rows:
        raise NotFoundError(f"No admin API key with id {raw[:60]!r}", param="key_id", code="key_not_found")
    return rows[0]


@router.get(BASE + "/{key_id}")
async def retrieve_admin_key(ident: CurrentKey, state: StateDep, key_id: str) -> Response:
    common.admin_caller(ident)
    common.require_manager(ident, "managing admin API keys")
    async with state.db.engine.connect() as conn:
        row = await _admin_key(conn, ident, key_id)
    return json_response(admin_key_object(row))


@router.delete(BASE + "/{key_id}")
async def delete_admin_key(request: Request, ident: CurrentKey, state: StateDep, key_id: str) -> Response:
    common.admin_caller(ident)
    common.require_manager(ident, "managing admin API keys")
    async with state.db.engine.begin() as conn:
        row = await _admin_key(conn, ident, key_id)
        await keys.delete_key(conn, key_id=row.id)
        await common.record(conn, ident, request, "api_key.deleted", resource_id=key_id)
    await state.keys.revoke(key_id=row.id)
    return json_response({"object": "organization.admin_api_key.deleted", "id": key_id, "deleted": True})
