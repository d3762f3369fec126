"""The Keys page: create (shown once), list, enable/disable, delete.

Every change calls ``state.keys.invalidate(key_id=...)`` so the next API request sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select, update
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.keys import KEY_SCOPES
from modelgate.accounts.service import create_key
from modelgate.api.deps import app_state, pending_writes_flushed
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.store.schema import ApiKey, PlaygroundKey
from modelgate.web.render import render
from modelgate.web.sessions import CsrfUser, CurrentUser

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

RETENTIONS = {"": "never resets", "day": "per day", "week": "per week", "month": "per month"}


async def _list_keys(request: Request, account_id: int) -> list[dict[str, Any]]:
    hidden = select(PlaygroundKey.key_id).where(PlaygroundKey.account_id == account_id)
    async with app_state(request).db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(ApiKey)
                .where(ApiKey.account_id == account_id, ApiKey.deleted_at.is_(None), ApiKey.id.not_in(hidden))
                .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
            )
        ).all()
    return [dict(r._mapping) for r in rows]


async def _page(
    request: Request,
    user: Any,
    *,
    new_key: Any = None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "keys.html",
        {
            "keys": await _list_keys(request, user.account_id),
            "scopes": KEY_SCOPES,
            "retentions": RETENTIONS,
            "new_key": new_key,
            "errors": errors or {},
            "form": form or {"scopes": ["model:chat"]},
            "welcome": request.query_params.get("welcome") == "1",
            "page": "keys",
        },
        status_code=status_code,
    )


@router.get("/app/keys")
async def keys_page(request: Request, user: CurrentUser) -> Response:
    return await _page(request, user)


@router.post("/app/keys")
async def create_key_submit(request: Request, user: CsrfUser) -> Response:
    form = await request.form()
    name = str(form.get("name") or "").strip()
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str) and s in KEY_SCOPES]
    management = form.get("management") == "on"
    limit_raw = str(form.get("limit_usd") or "").strip()
    retention = str(form.get("retention") or "")
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the key a name, so you can tell it apart later."
    elif len(name) > 200:
        errors["name"] = "Use at most 200 characters."
    if not management and not scopes:
        errors["scopes"] = "Choose at least one scope (model:chat to call chat models)."
    if retention not in RETENTIONS:
        errors["retention"] = "Choose when the limit resets."
    limit_credits: int | None = None
    if limit_raw:
        try:
            limit_usd = float(limit_raw)
            if not 0 < limit_usd <= 1_000_000:
                raise ValueError
            limit_credits = round(limit_usd * CREDITS_PER_USD)
        except ValueError:
            errors["limit_usd"] = "Enter a spending limit in USD greater than 0, or leave it empty."
    values = {
        "name": name,
        "scopes": scopes,
        "management": management,
        "limit_usd": limit_raw,
        "retention": retention,
    }
    if errors:
        return await _page(request, user, errors=errors, form=values, status_code=400)
    async with app_state(request).db.engine.begin() as conn:
        new = await create_key(
            conn,
            account_id=user.account_id,
            name=name,
            management=management,
            scopes=None if management else scopes,
            limit_retention=(retention or None) if limit_credits is not None else None,
            limit_credits=None if management else limit_credits,
        )
    return await _page(request, user, new_key=new)


async def _owned_update(request: Request, user: Any, key_id: int, **values: Any) -> None:
    now = datetime.now(UTC)
    hidden = select(PlaygroundKey.key_id).where(PlaygroundKey.account_id == user.account_id)
    async with app_state(request).db.engine.begin() as conn:
        await conn.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                ApiKey.account_id == user.account_id,
                ApiKey.deleted_at.is_(None),
                ApiKey.id.not_in(hidden),
            )
            .values(updated_at=now, **values)
        )
    app_state(request).keys.invalidate(key_id=key_id)


@router.post("/app/keys/{key_id}/toggle")
async def toggle_key(request: Request, key_id: int, user: CsrfUser) -> Response:
    form = await request.form()
    await _owned_update(request, user, key_id, disabled=form.get("enable") != "1")
    return RedirectResponse("/app/keys", status_code=303)


@router.post("/app/keys/{key_id}/delete")
async def delete_key(request: Request, key_id: int, user: CsrfUser) -> Response:
    await _owned_update(request, user, key_id, deleted_at=datetime.now(UTC), disabled=True)
    return RedirectResponse("/app/keys", status_code=303)
