"""API key management (api-key-management.md; specs keys-*.json, key-get.json).

``POST/GET /v1/keys`` and ``PATCH/PUT/DELETE /v1/keys/{prefix}`` need a management key and act on
the regular keys of its account (a management key's own prefix, another account's or an unknown
one is a 404). ``GET /v1/key`` takes any key: a regular key reads itself, a management key reads
its account's most recently used key. Every change invalidates the authentication cache, so a
disabled or deleted key is refused on its very next request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.accounts.manage import UNSET, update_key
from modelgate.accounts.service import create_key
from modelgate.api.admin_common import key_ref, record
from modelgate.api.service_query import json_response, parse_body, require_management
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.deps import CurrentKey, StateDep, pending_writes_flushed, text_parameters
from modelgate.store.key_rows import (
    KeyRecord,
    delete_key,
    get_key,
    get_key_by_id,
    latest_used_key,
    list_keys,
    monthly_usage,
)
from modelgate.store.keys import KeyIdentity
from modelgate.store.organisations import project_of
from modelgate.wire.service import KeyCreate, KeyExtras, KeyLimit, KeyPatch, KeyPut, key_view

router = APIRouter(tags=["keys"], dependencies=[Depends(text_parameters), Depends(pending_writes_flushed)])


def _expiry(value: str | None) -> datetime | None:
    """An ISO 8601 time (UTC when it names no offset), or None."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(
            "expires_at must be an ISO 8601 time, e.g. 2027-01-31T00:00:00Z", param="expires_at"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _extras(body: KeyExtras, *, only_sent: bool) -> dict[str, Any]:
    """modelgate's key fields from a request body (those sent, for a PATCH)."""
    out: dict[str, Any] = {
        "allowed_models": body.allowed_models,
        "rpm": body.rpm,
        "tpm": body.tpm,
        "expires_at": _expiry(body.expires_at),
        "cache_mode": body.cache,
    }
    sent = body.model_fields_set | ({"cache_mode"} if "cache" in body.model_fields_set else set())
    return {k: v for k, v in out.items() if k in sent} if only_sent else out


def _limit(limit: KeyLimit | None) -> tuple[str, int] | None:
    if limit is None:
        return None
    return limit.retention, round(limit.threshold * CREDITS_PER_USD)


async def _render(conn: object, rec: KeyRecord, *, key: str | None = None) -> dict[str, object]:
    usage = await monthly_usage(conn, key_ids=[rec.id])  # type: ignore[arg-type]
    return {"data": key_view(rec, monthly_credits=usage.get(rec.id, 0), key=key)}


def _require_key_manager(ident: KeyIdentity) -> None:
    require_management(ident)
    if not ident.may_manage_keys:
        raise PermissionDeniedError(
            "The billing role reads billing and usage; it cannot create, change or delete keys.",
            code="role_forbidden",
        )


async def _target(conn: object, ident: KeyIdentity, prefix: str) -> KeyRecord:
    rec = await get_key(
        conn,  # type: ignore[arg-type]
        account_id=ident.account_id,
        prefix=prefix,
        project_id=ident.scope_project,
    )
    if rec is None or rec.is_management:
        raise NotFoundError(f"No API key with prefix {prefix!r}", param="prefix", code="key_not_found")
    return rec


def _audited(changes: dict[str, object]) -> dict[str, object]:
    """A key change as the audit log keeps it (JSON values; the limit as its period and USD)."""
    out: dict[str, object] = {}
    for name, value in changes.items():
        if name == "limit" and isinstance(value, tuple):
            value = {"period": value[0], "credits": value[1]}
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


@router.post("/v1/keys", openapi_extra=operation(body=json_body(KeyCreate, required=False)))
async def create(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    _require_key_manager(ident)
    body = await parse_body(request, KeyCreate, required=False)
    limit = _limit(body.limit)
    async with state.db.engine.begin() as conn:
        project = ident.scope_project
        if body.project_id is not None:
            found = await project_of(conn, project_id=body.project_id)
            confined = ident.scope_project is not None and body.project_id != ident.scope_project
            if found is None or found.org_id != ident.account_id or confined:
                raise NotFoundError(
                    f"No project with id {body.project_id}", param="project_id", code="project_not_found"
                )
            project = found.id
        new = await create_key(
            conn,
            account_id=ident.account_id,
            name=body.name,
            scopes=list(dict.fromkeys(body.scopes)) if body.scopes is not None else None,
            limit_retention=limit[0] if limit else None,
            limit_credits=limit[1] if limit else None,
            project_id=project,
            member_id=ident.member_id,
            **_extras(body, only_sent=False),
        )
        rec = await get_key_by_id(conn, key_id=new.key_id)
        assert rec is not None
        await record(
            conn,
            ident,
            request,
            "api_key.created",
            project_id=rec.project_id,
            resource_id=key_ref(rec.id),
            details={"data": {"scopes": list(rec.scopes) if rec.scopes is not None else ["*"]}},
        )
        return json_response(await _render(conn, rec, key=new.key))


@router.get("/v1/keys")
async def list_all(ident: CurrentKey, state: StateDep) -> Response:
    require_management(ident)
    async with state.db.engine.connect() as conn:
        recs = await list_keys(conn, account_id=ident.account_id, project_id=ident.scope_project)
        usage = await monthly_usage(conn, key_ids=[r.id for r in recs])
    return json_response({"data": [key_view(r, monthly_credits=usage.get(r.id, 0)) for r in recs]})


@router.get("/v1/key")
async def latest(ident: CurrentKey, state: StateDep) -> Response:
    await state.keys.flush_last_used()
    async with state.db.engine.connect() as conn:
        if ident.is_management:
            rec = await latest_used_key(conn, account_id=ident.account_id, project_id=ident.scope_project)
            if rec is None:
                raise NotFoundError("This account has no API keys yet", code="key_not_found")
        else:
            rec = await get_key_by_id(conn, key_id=ident.key_id)
            assert rec is not None
        return json_response(await _render(conn, rec))


async def _change(
    request: Request, ident: CurrentKey, state: StateDep, prefix: str, *, replace: bool
) -> Response:
    _require_key_manager(ident)
    body = await parse_body(request, KeyPut if replace else KeyPatch)
    sent = body.model_fields_set
    changes: dict[str, object] = {}
    if replace:
        changes = {
            "name": body.name,
            "disabled": bool(body.disabled),
            "scopes": list(body.scopes) if body.scopes is not None else None,
            "limit": _limit(body.limit),
            **_extras(body, only_sent=False),
        }
    else:
        changes.update(_extras(body, only_sent=True))
        if "name" in sent:
            changes["name"] = body.name
        if "disabled" in sent:
            changes["disabled"] = bool(body.disabled)
        if "scopes" in sent:
            changes["scopes"] = list(body.scopes) if body.scopes is not None else None
        if "limit" in sent:
            changes["limit"] = _limit(body.limit)
    async with state.db.engine.begin() as conn:
        rec = await _target(conn, ident, prefix)
        rec = await update_key(
            conn,
            key_id=rec.id,
            name=changes.get("name", UNSET),  # type: ignore[arg-type]
            disabled=changes.get("disabled", UNSET),  # type: ignore[arg-type]
            scopes=changes.get("scopes", UNSET),  # type: ignore[arg-type]
            limit=changes.get("limit", UNSET),  # type: ignore[arg-type]
            allowed_models=changes.get("allowed_models", UNSET),  # type: ignore[arg-type]
            rpm=changes.get("rpm", UNSET),  # type: ignore[arg-type]
            tpm=changes.get("tpm", UNSET),  # type: ignore[arg-type]
            expires_at=changes.get("expires_at", UNSET),  # type: ignore[arg-type]
            cache_mode=changes.get("cache_mode", UNSET),  # type: ignore[arg-type]
        )
        await record(
            conn,
            ident,
            request,
            "api_key.updated",
            project_id=rec.project_id,
            resource_id=key_ref(rec.id),
            details={"changes_requested": _audited(changes)},
        )
        out = await _render(conn, rec)
    await state.keys.revoke(key_id=rec.id)  # refused by the next request on every instance
    return json_response(out)


@router.patch("/v1/keys/{prefix}", openapi_extra=operation(body=json_body(KeyPatch)))
async def patch(request: Request, ident: CurrentKey, state: StateDep, prefix: str) -> Response:
    return await _change(request, ident, state, prefix, replace=False)


@router.put("/v1/keys/{prefix}", openapi_extra=operation(body=json_body(KeyPut)))
async def put(request: Request, ident: CurrentKey, state: StateDep, prefix: str) -> Response:
    return await _change(request, ident, state, prefix, replace=True)


@router.delete("/v1/keys/{prefix}")
async def delete(request: Request, ident: CurrentKey, state: StateDep, prefix: str) -> Response:
    _require_key_manager(ident)
    async with state.db.engine.begin() as conn:
        rec = await _target(conn, ident, prefix)
        await delete_key(conn, key_id=rec.id)
        await record(
            conn, ident, request, "api_key.deleted", project_id=rec.project_id, resource_id=key_ref(rec.id)
        )
    await state.keys.revoke(key_id=rec.id)  # refused by the next request on every instance
    return json_response({"data": {"prefix": rec.prefix, "deleted": True}})
