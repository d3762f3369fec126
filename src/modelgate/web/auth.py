"""Sign-up, log-in and log-out pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.passwords import SignUpError, normalise_email, sign_up, validate_sign_up
from modelgate.accounts.service import verify_password
from modelgate.api.deps import app_state
from modelgate.web.render import render, web_state
from modelgate.web.sessions import CsrfUser, check_anon_csrf, end_session, load_user, start_session

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    # Only same-site paths: "/app/x" yes, "//evil.example" or "https://..." no.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/app/keys"


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/")
async def root() -> Response:
    return RedirectResponse("/app", status_code=303)


@router.get("/app")
async def app_home(request: Request) -> Response:
    user = await load_user(request)
    return RedirectResponse("/app/keys" if user else "/app/login", status_code=303)


@router.get("/app/signup")
async def signup_page(request: Request) -> Response:
    if await load_user(request):
        return RedirectResponse("/app/keys", status_code=303)
    return render(request, "signup.html", {"errors": {}, "email": ""})


@router.post("/app/signup")
async def signup_submit(
    request: Request, email: str = Form(""), password: str = Form(""), csrf_token: str = Form("")
) -> Response:
    check_anon_csrf(request, csrf_token)
    errors = validate_sign_up(email, password)
    if not errors:
        try:
            async with app_state(request).db.engine.begin() as conn:
                account_id = await sign_up(conn, email=email, password=password)
        except SignUpError as exc:
            errors[exc.field] = str(exc)
    if errors:
        return render(request, "signup.html", {"errors": errors, "email": email}, status_code=400)
    response = RedirectResponse("/app/keys?welcome=1", status_code=303)
    await start_session(request, response, account_id=account_id)
    return response


@router.get("/app/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    if await load_user(request):
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"errors": {}, "email": "", "next": _safe_next(next)})


@router.post("/app/login")
async def login_submit(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form(""),
) -> Response:
    check_anon_csrf(request, csrf_token)
    limiter = web_state(request).login_limiter
    ip = _client_ip(request)
    key_email = normalise_email(email)
    ctx: dict[str, Any] = {"email": email, "next": _safe_next(next)}
    wait = limiter.retry_after(key_email, ip)
    if wait:
        minutes = max(1, round(wait / 60))
        ctx["errors"] = {
            "form": f"Too many failed log-in attempts for this email. Try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}."
        }
        resp = render(request, "login.html", ctx, status_code=429)
        resp.headers["Retry-After"] = str(wait)
        return resp
    async with app_state(request).db.engine.begin() as conn:
        account_id = await verify_password(conn, email=email, password=password)
    if account_id is None:
        limiter.failed(key_email, ip)
        ctx["errors"] = {"form": "Wrong email or password."}
        return render(request, "login.html", ctx, status_code=400)
    limiter.succeeded(key_email, ip)
    response = RedirectResponse(_safe_next(next), status_code=303)
    await start_session(request, response, account_id=account_id)
    return response


@router.post("/app/logout")
async def logout(request: Request, user: CsrfUser) -> Response:
    response = RedirectResponse("/app/login", status_code=303)
    await end_session(request, response)
    return response


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/app/login?next={quote(target)}", status_code=303)
