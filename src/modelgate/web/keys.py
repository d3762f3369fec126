"""The Keys page: create (shown once), list with spend toward the limit, enable/disable, delete.

Creating a key answers with a redirect (post/redirect/get), so reloading the page never creates a
second key: the new key rides to the next ``GET /app/keys`` in a short-lived HttpOnly cookie
scoped to that path, is shown once, and the cookie is deleted by that same answer.

Every change awaits ``state.keys.revoke(key_id=...)`` so the next API request, on any instance, sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from modelgate.accounts.keys import KEY_SCOPES, key_digest
from modelgate.accounts.service import create_key
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.money import usd_text
from modelgate.store.accounts import get_account
from modelgate.store.key_limits import aware, last_limit_refusals
from modelgate.store.key_rows import monthly_usage, period_spend
from modelgate.store.keys import live_key_with_digest, page_keys, update_owned_key
from modelgate.store.ledger import period_key, period_start
from modelgate.web.organisation import may_manage_keys, refused
from modelgate.web.project_access import record
from modelgate.web.render import render
from modelgate.web.sessions import CsrfUser, CurrentUser

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

RETENTIONS = {"": "never resets", "day": "per day", "week": "per week", "month": "per month"}
PERIOD_NAMES = {"day": "today", "week": "this week", "month": "this month"}
NEW_KEY_COOKIE = "mg_new_key"
MAX_ID = 2**31 - 1


async def _list_keys(request: Request, account_id: int) -> list[dict[str, Any]]:
    async with app_state(request).db.engine.connect() as conn:
        keys = await page_keys(conn, account_id=account_id)
        month = await monthly_usage(conn, key_ids=[k["id"] for k in keys])
        periods = {(k["id"], period_key(k["limit_retention"])) for k in keys if k["limit_credits"]}
        spend = await period_spend(conn, periods)
        refused = await last_limit_refusals(conn, [k["id"] for k in keys if k["limit_credits"]])
    for k in keys:
        if k["limit_credits"]:
            period = period_key(k["limit_retention"])
            k["spent"] = spend.get((k["id"], period), 0)
            k["period_name"] = PERIOD_NAMES.get(k["limit_retention"] or "", "in total")
            k["pct"] = min(100.0, round(100 * k["spent"] / k["limit_credits"], 1))
            # Spent, or a request refused by this limit since it was last changed (a limit smaller
            # than one request's hold refuses with nothing spent).
            since = max(aware(k["updated_at"]), period_start(k["limit_retention"]) or aware(k["created_at"]))
            k["exhausted"] = k["spent"] >= k["limit_credits"] or refused.get(k["id"], since) > since
            k["limit_usd"] = _usd_input(k["limit_credits"])
        else:
            k["spent"] = month.get(k["id"], 0)
            k["period_name"] = "this month"
            k["pct"] = None
            k["exhausted"] = False
            k["limit_usd"] = ""
    return keys


def _usd_input(credits: int) -> str:
    """A limit as the form shows it: plain decimal USD (``0.000001``, never ``1e-06``)."""
    return usd_text(credits / CREDITS_PER_USD).lstrip("$").replace(",", "")


def parse_limit(limit_raw: str, retention: str, errors: dict[str, str]) -> int | None:
    """The limit field (USD, empty: no limit) in credits; problems go into ``errors``."""
    if retention not in RETENTIONS:
        errors["retention"] = "Choose when the limit resets."
    if not limit_raw:
        return None
    try:
        limit_usd = Decimal(limit_raw.replace(",", "").lstrip("$"))
        if not limit_usd.is_finite() or not 0 < limit_usd <= 1_000_000:
            raise ValueError
        credits = int(limit_usd * CREDITS_PER_USD)
        if credits < 1:
            raise ValueError
    except (ValueError, ArithmeticError):
        errors["limit_usd"] = "Enter a spending limit in USD of at least $0.0000005, or leave it empty."
        return None
    return credits


async def _page(
    request: Request,
    user: Any,
    *,
    new_key: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    welcome = request.query_params.get("welcome") == "1"
    balance = 0
    if welcome:
        async with app_state(request).db.engine.connect() as conn:
            info = await get_account(conn, account_id=user.account_id)
        balance = info.balance_credits if info is not None else 0
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
            "form": form or {"scopes": list(KEY_SCOPES)},  # every model scope, as the AI/ML API dashboard
            "changed": request.query_params.get("changed", ""),
            "welcome": welcome,
            "balance": balance,
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
        live = await live_key_with_digest(conn, account_id=account_id, digest=key_digest(raw))
    return raw if live else None


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
    limit_credits = parse_limit(limit_raw, retention, errors)
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
        scopes_shown = ["api.management.read", "api.management.write"] if management else scopes
        await record(
            conn,
            request,
            user,
            user.org_id,
            "api_key.created",
            resource_id=f"key_{new.key_id}",
            details={"data": {"scopes": scopes_shown}},
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
    """Change one of the organisation's keys, recorded in its audit log (``api_key.updated``, or
    ``api_key.deleted`` when ``deleted_at`` is set)."""
    now = datetime.now(UTC)
    async with app_state(request).db.engine.begin() as conn:
        await update_owned_key(conn, account_id=user.org_id, key_id=key_id, updated_at=now, **values)
        deleted = values.get("deleted_at") is not None
        changes = {k: v for k, v in values.items() if k != "deleted_at"}
        await record(
            conn,
            request,
            user,
            user.org_id,
            "api_key.deleted" if deleted else "api_key.updated",
            resource_id=f"key_{key_id}",
            details=None if deleted else {"changes_requested": changes},
        )
    await app_state(request).keys.revoke(key_id=key_id)


@router.post("/app/keys/{key_id}/toggle")
async def toggle_key(request: Request, user: CsrfUser, key_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    if not may_manage_keys(user):
        return refused(request, "The billing role cannot change keys.")
    form = await request.form()
    disabled = form.get("enable") != "1"
    await _owned_update(request, user, key_id, disabled=disabled)
    if "application/json" in request.headers.get("accept", ""):  # app.js: the switch flips in place
        return JSONResponse({"id": key_id, "disabled": disabled})
    return RedirectResponse(f"/app/keys#key-{key_id}", status_code=303)


@router.post("/app/keys/{key_id}/limit")
async def change_limit(request: Request, user: CsrfUser, key_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    """Set, raise, lower or remove a key's spending limit (empty: no limit)."""
    form = await request.form()
    retention = str(form.get("retention") or "")
    errors: dict[str, str] = {}
    limit_credits = parse_limit(str(form.get("limit_usd") or "").strip(), retention, errors)
    if errors:
        return await _page(
            request, user, errors={f"limit-{key_id}": " ".join(errors.values())}, status_code=400
        )
    await _owned_update(
        request,
        user,
        key_id,
        limit_credits=limit_credits,
        limit_retention=(retention or None) if limit_credits is not None else None,
    )
    return RedirectResponse(f"/app/keys?changed={key_id}#key-{key_id}", status_code=303)


@router.post("/app/keys/{key_id}/delete")
async def delete_key(request: Request, user: CsrfUser, key_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    if not may_manage_keys(user):
        return refused(request, "The billing role cannot delete keys.")
    await _owned_update(request, user, key_id, deleted_at=datetime.now(UTC), disabled=True)
    return RedirectResponse("/app/keys", status_code=303)
