"""The Keys page: create (shown once), list with spend toward the limit, enable/disable, delete.

Creating a key answers with a redirect (post/redirect/get), so reloading the page never creates a
second key: the new key rides to the next ``GET /app/keys`` in a short-lived HttpOnly cookie
scoped to that path, is shown once, and the cookie is deleted by that same answer.

Every change awaits ``state.keys.revoke(key_id=...)`` so the next API request, on any instance, sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy import func, select, update
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.keys import KEY_SCOPES, key_digest
from modelgate.accounts.service import create_key
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.store.ledger import month_start, period_key
from modelgate.store.schema import ApiKey, KeySpend, LedgerEntry, PlaygroundKey
from modelgate.web.organisation import may_manage_keys, refused
from modelgate.web.render import render
from modelgate.web.sessions import CsrfUser, CurrentUser

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

RETENTIONS = {"": "never resets", "day": "per day", "week": "per week", "month": "per month"}
PERIOD_NAMES = {"day": "today", "week": "this week", "month": "this month"}
NEW_KEY_COOKIE = "mg_new_key"
MAX_ID = 2**31 - 1


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
        keys = [dict(r._mapping) for r in rows]
        ids = [k["id"] for k in keys]
        month = dict(
            (
                await conn.execute(
                    select(LedgerEntry.key_id, func.sum(LedgerEntry.credits))
                    .where(
                        LedgerEntry.key_id.in_(ids),
                        LedgerEntry.kind == "charge",
                        LedgerEntry.created_at >= month_start(),
                    )
                    .group_by(LedgerEntry.key_id)
                )
            ).all()
        )
        periods = {(k["id"], period_key(k["limit_retention"])) for k in keys if k["limit_credits"]}
        spend: dict[tuple[int, str], int] = {}
        if periods:
            for key_id, period, spent, held in (
                await conn.execute(
                    select(
                        KeySpend.key_id, KeySpend.period, KeySpend.spent_credits, KeySpend.held_credits
                    ).where(
                        KeySpend.key_id.in_({p[0] for p in periods}),
                        KeySpend.period.in_({p[1] for p in periods}),
                    )
                )
            ).all():
                spend[(key_id, period)] = int(spent or 0) + int(held or 0)
    for k in keys:
        if k["limit_credits"]:
            period = period_key(k["limit_retention"])
            k["spent"] = spend.get((k["id"], period), 0)
            k["period_name"] = PERIOD_NAMES.get(k["limit_retention"] or "", "in total")
            k["pct"] = min(100.0, round(100 * k["spent"] / k["limit_credits"], 1))
            k["exhausted"] = k["spent"] >= k["limit_credits"]
        else:
            k["spent"] = -int(month.get(k["id"]) or 0)  # charges are negative ledger rows
            k["period_name"] = "this month"
            k["pct"] = None
            k["exhausted"] = False
    return keys


async def _page(
    request: Request,
    user: Any,
    *,
    new_key: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "keys.html",
        {
            "keys": await _list_keys(request, user.org_id),
            "may_manage": may_manage_keys(user),
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


async def _new_key_shown_once(request: Request, account_id: int) -> str | None:
    """The key created just before this page's redirect, if it is this account's."""
    raw = request.cookies.get(NEW_KEY_COOKIE)
    if not raw or len(raw) > 64:
        return None
    async with app_state(request).db.engine.connect() as conn:
        row = (
            await conn.execute(
                select(ApiKey.id).where(
                    ApiKey.digest == key_digest(raw),
                    ApiKey.account_id == account_id,
                    ApiKey.deleted_at.is_(None),
                )
            )
        ).first()
    return raw if row is not None else None


@router.get("/app/keys")
async def keys_page(request: Request, user: CurrentUser) -> Response:
    new_key = await _new_key_shown_once(request, user.org_id)
    response = await _page(request, user, new_key=new_key)
    if NEW_KEY_COOKIE in request.cookies:
        response.delete_cookie(NEW_KEY_COOKIE, path="/app/keys")
    return response


@router.post("/app/keys")
async def create_key_submit(request: Request, user: CsrfUser) -> Response:
    if not may_manage_keys(user):
        return refused(request, "The billing role cannot create keys.")
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
    elif "\x00" in name:
        errors["name"] = "The name cannot contain a NUL character."
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
            account_id=user.org_id,
            member_id=user.account_id,
            name=name,
            management=management,
            scopes=None if management else scopes,
            limit_retention=(retention or None) if limit_credits is not None else None,
            limit_credits=None if management else limit_credits,
        )
    response = RedirectResponse("/app/keys#new-key", status_code=303)
    response.set_cookie(
        NEW_KEY_COOKIE,
        new.key,
        max_age=120,
        path="/app/keys",
        httponly=True,
        samesite="strict",
        secure=app_state(request).settings.secure_cookies,
    )
    return response


async def _owned_update(request: Request, user: Any, key_id: int, **values: Any) -> None:
    now = datetime.now(UTC)
    hidden = select(PlaygroundKey.key_id).where(PlaygroundKey.account_id == user.org_id)
    async with app_state(request).db.engine.begin() as conn:
        await conn.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                ApiKey.account_id == user.org_id,
                ApiKey.deleted_at.is_(None),
                ApiKey.id.not_in(hidden),
            )
            .values(updated_at=now, **values)
        )
    await app_state(request).keys.revoke(key_id=key_id)


@router.post("/app/keys/{key_id}/toggle")
async def toggle_key(request: Request, user: CsrfUser, key_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    if not may_manage_keys(user):
        return refused(request, "The billing role cannot change keys.")
    form = await request.form()
    await _owned_update(request, user, key_id, disabled=form.get("enable") != "1")
    return RedirectResponse("/app/keys", status_code=303)


@router.post("/app/keys/{key_id}/delete")
async def delete_key(request: Request, user: CsrfUser, key_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    if not may_manage_keys(user):
        return refused(request, "The billing role cannot delete keys.")
    await _owned_update(request, user, key_id, deleted_at=datetime.now(UTC), disabled=True)
    return RedirectResponse("/app/keys", status_code=303)
