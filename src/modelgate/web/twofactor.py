"""Two-factor sign-in (TOTP, RFC 6238) on the web: enrolment and recovery codes on
``/app/account/two-factor``, the second step of a log-in on ``/app/login/code``, and the operator's
"required for every account" rule (``enforce``: pages send an account without it to enrolment).

After the password, an account with two-factor sign-in gets no session yet: a one-time token
(``store/mail_tokens.py``, purpose ``login2fa``, five minutes) in an HttpOnly cookie carries it to
the code form; a right code (or an unused recovery code, which then stops working) starts the
session. Wrong codes count as failed log-ins (``web/ratelimit.py``).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts import totp
from modelgate.accounts.hashing import password_matches
from modelgate.httpkit.deps import app_state
from modelgate.store import mail_tokens
from modelgate.store import totp as totp_store
from modelgate.store.db import Conn
from modelgate.store.mail_tokens import password_hash_of
from modelgate.web.render import render, web_state
from modelgate.web.sessions import (
    CsrfUser,
    WebUser,
    check_anon_csrf,
    check_user_csrf,
    current_user_only,
    start_session,
)

router = APIRouter(include_in_schema=False)

PENDING_COOKIE = "mg_2fa"
PENDING_TTL = timedelta(minutes=5)
ENROL = "/app/account/two-factor"


async def setup_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse(f"{ENROL}?required=1", status_code=303)


async def finish_login(request: Request, *, account_id: int, next_path: str) -> Response:
    """After a right password: the session, or the code form first when the account uses TOTP."""
    async with app_state(request).db.engine.begin() as conn:
        if await totp_store.two_factor_enabled(conn, account_id=account_id):
            token = await mail_tokens.create_token(
                conn, account_id=account_id, purpose="login2fa", ttl=PENDING_TTL
            )
        else:
            token = None
    if token is None:
        response = RedirectResponse(next_path, status_code=303)
        await start_session(request, response, account_id=account_id)
        return response
    response = RedirectResponse("/app/login/code?next=" + next_path, status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        token,
        max_age=int(PENDING_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=app_state(request).settings.secure_cookies,
        path="/app/login",
    )
    return response


def _safe_next(value: str) -> str:
    ok = value.startswith("/") and not value.startswith("//") and "\\" not in value
    return value if ok else "/app/keys"


@router.get("/app/login/code")
async def code_page(request: Request, next: str = "/app/keys") -> Response:
    async with app_state(request).db.engine.connect() as conn:
        owner = await mail_tokens.peek_token(
            conn, token=request.cookies.get(PENDING_COOKIE, ""), purpose="login2fa"
        )
    if owner is None:
        return RedirectResponse("/app/login", status_code=303)
    return render(request, "login_code.html", {"errors": {}, "next": _safe_next(next)})


@router.post("/app/login/code")
async def code_submit(
    request: Request, code: str = Form(""), csrf_token: str = Form(""), next: str = Form("")
) -> Response:
    check_anon_csrf(request, csrf_token)
    pending = request.cookies.get(PENDING_COOKIE, "")
    state = app_state(request)
    async with state.db.engine.connect() as conn:
        owner = await mail_tokens.peek_token(conn, token=pending, purpose="login2fa")
    if owner is None:
        return RedirectResponse("/app/login", status_code=303)
    limiter = web_state(request).login_limiter
    ip = request.client.host if request.client else "unknown"
    ctx: dict[str, object] = {"next": _safe_next(next)}
    wait, _ = await limiter.retry_after(owner.email, ip)
    if wait:
        ctx["errors"] = {"code": "Too many wrong codes. Log in again in a few minutes."}
        return render(request, "login_code.html", ctx, status_code=429)
    ok = False
    async with state.db.engine.begin() as conn:
        ok = await _check_code(conn, owner.account_id, code[:64])
        if ok:
            ok = await mail_tokens.consume_token(conn, token=pending, purpose="login2fa") is not None
    if not ok:
        await limiter.failed(owner.email, ip)
        ctx["errors"] = {"code": "That code is not right (or was used already). Try the current one."}
        return render(request, "login_code.html", ctx, status_code=400)
    await limiter.succeeded(owner.email, ip)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.delete_cookie(PENDING_COOKIE, path="/app/login")
    await start_session(request, response, account_id=owner.account_id)
    return response


async def _check_code(conn: Conn, account_id: int, code: str) -> bool:
    """A current TOTP code (once) or an unused recovery code (then used up)."""
    cred = await totp_store.load_totp(conn, account_id=account_id)
    if cred is None or not cred.enabled:
        return False
    if any(c.isalpha() for c in code):
        return await totp_store.use_recovery_code(
            conn, account_id=account_id, digest=totp.recovery_digest(code)
        )
    step = totp.matching_step(cred.secret, code, after=cred.last_step)
    return step is not None and await totp_store.accept_step(conn, account_id=account_id, step=step)


async def _page(request: Request, user: WebUser, **extra: object) -> Response:
    async with app_state(request).db.engine.begin() as conn:
        cred = await totp_store.load_totp(conn, account_id=user.account_id)
        if cred is None or (not cred.enabled and extra.get("restart")):
            await totp_store.start_enrolment(conn, account_id=user.account_id, secret=totp.new_secret())
            cred = await totp_store.load_totp(conn, account_id=user.account_id)
        left = await totp_store.recovery_codes_left(conn, account_id=user.account_id)
        required = await totp_store.two_factor_required(conn)
    assert cred is not None
    ctx: dict[str, object] = {
        "enabled": cred.enabled,
        "secret": " ".join(cred.secret[i : i + 4] for i in range(0, len(cred.secret), 4)),
        "uri": totp.provisioning_uri(cred.secret, account=user.email),
        "codes_left": left,
        "required": required,
        "required_notice": request.query_params.get("required") == "1",
        "errors": {},
        "codes": None,
        "page": "account",
    }
    ctx.update(extra)
    status = 400 if ctx["errors"] else 200
    return render(request, "two_factor.html", ctx, status_code=status)


@router.get(ENROL)
async def enrol_page(request: Request) -> Response:
    user = await current_user_only(request)
    return await _page(request, user)


@router.post(ENROL + "/enable")
async def enable(request: Request) -> Response:
    user = await current_user_only(request)  # an account the operator requires it of enrols here
    await check_user_csrf(request, user)
    code = str((await request.form()).get("code") or "")
    codes = totp.new_recovery_codes()
    async with app_state(request).db.engine.begin() as conn:
        cred = await totp_store.load_totp(conn, account_id=user.account_id)
        step = None if cred is None else totp.matching_step(cred.secret, code[:64], after=cred.last_step)
        ok = step is not None and await totp_store.accept_step(conn, account_id=user.account_id, step=step)
        if ok:
            digests = [totp.recovery_digest(c) for c in codes]
            await totp_store.enable(conn, account_id=user.account_id, recovery_digests=digests)
    if not ok:
        return await _page(
            request, user, errors={"code": "That code is not right. Enter the one your app shows now."}
        )
    return await _page(request, user, codes=codes)


@router.post(ENROL + "/recovery-codes")
async def new_codes(request: Request, user: CsrfUser) -> Response:
    codes = totp.new_recovery_codes()
    async with app_state(request).db.engine.begin() as conn:
        if not await totp_store.two_factor_enabled(conn, account_id=user.account_id):
            return RedirectResponse(ENROL, status_code=303)
        digests = [totp.recovery_digest(c) for c in codes]
        await totp_store.replace_recovery_codes(conn, account_id=user.account_id, digests=digests)
    return await _page(request, user, codes=codes)


@router.post(ENROL + "/disable")
async def disable(request: Request, user: CsrfUser) -> Response:
    password = str((await request.form()).get("password") or "")
    async with app_state(request).db.engine.begin() as conn:
        if await totp_store.two_factor_required(conn):
            return await _page(request, user, errors={"disable": "The operator requires two-factor sign-in."})
        stored = await password_hash_of(conn, account_id=user.account_id)
        if stored is not None and (len(password) > 1024 or not password_matches(stored, password)):
            return await _page(request, user, errors={"disable": "This is not your password."})
        await totp_store.disable(conn, account_id=user.account_id)
    return RedirectResponse("/app/account?two_factor=off", status_code=303)
