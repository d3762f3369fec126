"""The Account page: who is signed in, and setting or changing the password.

An account signed in with a one-time link may have no password yet (the first-start admin): it sets
one here without a current password. Otherwise the current password is asked for.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.hashing import password_matches
from modelgate.accounts.passwords import validate_sign_up
from modelgate.accounts.service import set_password
from modelgate.httpkit.deps import app_state
from modelgate.store.accounts import password_hash
from modelgate.web.recovery import security_summary
from modelgate.web.render import render
from modelgate.web.sessions import CsrfUser, CurrentUser, WebUser

router = APIRouter(include_in_schema=False)


async def _has_password(request: Request, account_id: int) -> bool:
    async with app_state(request).db.engine.connect() as conn:
        stored = await password_hash(conn, account_id=account_id)
    return stored is not None


async def _page(
    request: Request, user: WebUser, *, errors: dict[str, str] | None = None, status_code: int = 200
) -> Response:
    q = request.query_params
    return render(
        request,
        "account.html",
        {
            "has_password": await _has_password(request, user.account_id),
            "errors": errors or {},
            "saved": q.get("saved") == "1",
            "set_password": q.get("set_password") == "1",
            "security": await security_summary(request, user.account_id),
            "page": "account",
        },
        status_code=status_code,
    )


@router.get("/app/account")
async def account_page(request: Request, user: CurrentUser) -> Response:
    return await _page(request, user)


@router.post("/app/account/password")
async def change_password(request: Request, user: CsrfUser) -> Response:
    form = await request.form()
    current = str(form.get("current_password") or "")
    new = str(form.get("new_password") or "")
    confirm = str(form.get("confirm_password") or "")
    errors: dict[str, str] = {}
    problem = validate_sign_up("x@example.com", new).get("password")
    if problem:
        errors["new_password"] = problem
    elif new != confirm:
        errors["confirm_password"] = "The two passwords differ."
    async with app_state(request).db.engine.begin() as conn:
        stored = await password_hash(conn, account_id=user.account_id)
        if stored is not None and (len(current) > 1024 or not password_matches(stored, current)):
            errors["current_password"] = "This is not your current password."
        if errors:
            return await _page(request, user, errors=errors, status_code=400)
        await set_password(conn, account_id=user.account_id, password=new)
    return RedirectResponse("/app/account?saved=1", status_code=303)
