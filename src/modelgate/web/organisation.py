"""The organisation switcher and key editing on the web (docs/organisations.md).

``POST /app/organisation`` remembers which organisation the pages act on (a cookie, checked against
the person's memberships on every page load: only organisations where they are an owner, admin or
billing member, or their own). ``POST /app/keys/{id}/edit`` changes a key's name, spending limit,
allowed models and expiry (the same function as ``PATCH /v1/keys``), then revokes it everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from fastapi import APIRouter, Path, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.manage import UNSET, update_key
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state
from modelgate.store.key_rows import get_key_by_id
from modelgate.web.project_access import record
from modelgate.web.render import render
from modelgate.web.sessions import ORG_COOKIE, CsrfUser, WebUser

router = APIRouter(include_in_schema=False)
MAX_ID = 2**31 - 1
RETENTIONS = ("", "day", "week", "month")


@router.post("/app/organisation")
async def switch_organisation(request: Request, user: CsrfUser) -> Response:
    form = await request.form()
    raw = str(form.get("org") or "")
    chosen = int(raw) if raw.isdigit() and len(raw) <= 10 else user.account_id
    if all(o[0] != chosen for o in user.orgs):
        chosen = user.account_id
    back = request.headers.get("referer") or "/app/keys"
    response = RedirectResponse(
        back if back.startswith(str(request.base_url)) else "/app/keys", status_code=303
    )
    return remember_org(request, response, chosen)


def remember_org(request: Request, response: Response, org_id: int) -> Response:
    """Set the switcher's cookie on ``response`` (checked against memberships on every load)."""
    response.set_cookie(
        ORG_COOKIE,
        str(org_id),
        max_age=365 * 86400,
        path="/",
        httponly=True,
        samesite="lax",
        secure=app_state(request).settings.secure_cookies,
    )
    return response


def refused(request: Request, message: str, status: int = 403) -> Response:
    return render(
        request,
        "error.html",
        {"title": "Not allowed", "message": message, "back": "/app/keys"},
        status_code=status,
    )


def may_manage_keys(user: WebUser) -> bool:
    """The billing role reads billing and usage; it does not create, change or delete keys."""
    return user.org_role != "billing"


@router.post("/app/keys/{key_id}/edit")
async def edit_key(request: Request, user: CsrfUser, key_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    if not may_manage_keys(user):
        return refused(request, "The billing role cannot change keys.")
    form = await request.form()
    name = str(form.get("name") or "").strip()
    limit_raw = str(form.get("limit_usd") or "").strip()
    retention = str(form.get("retention") or "")
    models_raw = str(form.get("allowed_models") or "").strip()
    expires_raw = str(form.get("expires") or "").strip()
    problems = []
    if not name or len(name) > 200 or "\x00" in name:
        problems.append("Give the key a name of at most 200 characters.")
    if retention not in RETENTIONS:
        problems.append("Choose when the limit resets.")
    limit: tuple[str, int] | None = None
    if limit_raw:
        try:
            usd = float(limit_raw)
            if not 0 < usd <= 1_000_000:
                raise ValueError
            limit = (retention or "no_reset", round(usd * CREDITS_PER_USD))
        except ValueError:
            problems.append("Enter a spending limit in USD greater than 0, or leave it empty.")
    models = [m.strip() for m in models_raw.replace("\n", ",").split(",") if m.strip()] or None
    if models is not None and (len(models) > 500 or any(len(m) > 200 or "\x00" in m for m in models)):
        problems.append("List at most 500 model names, separated by commas.")
    expires = None
    if expires_raw:
        try:
            expires = datetime.combine(datetime.strptime(expires_raw, "%Y-%m-%d").date(), time(0), tzinfo=UTC)
        except ValueError:
            problems.append("Enter the expiry as a date (YYYY-MM-DD), or leave it empty.")
    if problems:
        return refused(request, " ".join(problems), status=400)
    state = app_state(request)
    async with state.db.engine.begin() as conn:
        rec = await get_key_by_id(conn, key_id=key_id)
        if rec is None or rec.account_id != user.org_id or rec.deleted_at is not None:
            return refused(request, "No such key.", status=404)
        await update_key(
            conn,
            key_id=key_id,
            name=name,
            limit=limit if not rec.is_management else UNSET,
            allowed_models=models,
            expires_at=expires,
        )
        changes = {
            "name": name,
            "limit_credits": limit[1] if limit else None,
            "allowed_models": models,
            "expires_at": expires.isoformat() if expires else None,
        }
        await record(
            conn,
            request,
            user,
            user.org_id,
            "api_key.updated",
            project_id=rec.project_id,
            resource_id=f"key_{key_id}",
            details={"changes_requested": changes},
        )
    await state.keys.revoke(key_id=key_id)
    return RedirectResponse("/app/keys", status_code=303)
