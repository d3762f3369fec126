"""The landing page, sign-up, log-in, log-out and one-time sign-in links.

Sign-up never says whether an email is registered: a new email and a taken one get the same
answer (a redirect to the log-in page with the same notice), after the same work. Log-in failures
are limited per (email, client IP) and per client IP across emails (``web/ratelimit.py``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.passwords import normalise_email, plausible_email, sign_up, validate_sign_up
from modelgate.accounts.service import verify_password
from modelgate.httpkit.deps import app_state
from modelgate.store.accounts import sign_in_state
from modelgate.store.db import IntegrityError
from modelgate.store.identity import in_sso_only_org
from modelgate.store.signin_links import consume_signin_link, peek_signin_link
from modelgate.store.site_settings import load_site_settings
from modelgate.web.recovery import mail_verification
from modelgate.web.render import render, web_state
from modelgate.web.sessions import CsrfUser, check_anon_csrf, end_session, load_user, start_session
from modelgate.web.twofactor import finish_login

router = APIRouter(include_in_schema=False)

SIGNED_UP = "/app/login?signed_up=1"
WELCOME = "/app/keys?welcome=1"


def safe_next(value: str | None, default: str = "/app/keys") -> str:
    # Only same-site paths: "/app/x" yes, "//evil.example" or "https://..." no.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def sso_only(request: Request, email: str) -> bool:
    """Whether ``email``'s domain signs in through single sign-on only (MODELGATE_SSO_ONLY_DOMAINS)."""
    domains = {d.strip().lower().lstrip("@") for d in app_state(request).settings.sso_only_domains}
    return normalise_email(email).rpartition("@")[2] in domains


SSO_ONLY_MESSAGE = "Your organisation signs in through single sign-on: use its button below."


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@router.get("/")
async def landing(request: Request) -> Response:
    if await load_user(request):
        return RedirectResponse("/app/keys", status_code=303)
    catalog = app_state(request).catalog
    models = [m for m in catalog.models if catalog.unavailable_reason(m) is None]
    return render(request, "landing.html", {"models": models, "total": len(catalog.models), "page": "home"})


@router.get("/app")
async def app_home(request: Request) -> Response:
    user = await load_user(request)
    return RedirectResponse("/app/keys" if user else "/app/login", status_code=303)


@router.get("/app/signup")
async def signup_page(request: Request, next: str | None = None, email: str = "") -> Response:
    if await load_user(request):
        return RedirectResponse(safe_next(next), status_code=303)
    shown = email[:320] if plausible_email(email[:320]) else ""
    return render(request, "signup.html", {"errors": {}, "email": shown, "next": safe_next(next, "")})


@router.post("/app/signup")
async def signup_submit(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form(""),
) -> Response:
    """A new account is signed in and sent to ``next`` (an invitation's page) or welcomed."""
    check_anon_csrf(request, csrf_token)
    errors = validate_sign_up(email, password)
    if not errors and sso_only(request, email):
        errors = {"email": SSO_ONLY_MESSAGE.replace(": use its button below", " (log-in page)")}
    if errors:
        ctx = {"errors": errors, "email": email, "next": safe_next(next, "")}
        return render(request, "signup.html", ctx, status_code=400)
    limiter = web_state(request).signup_limiter
    ip = client_ip(request)
    wait = await limiter.retry_after(ip)
    if wait:
        errors = {"form": f"Too many sign-ups from your network. Try again in {_minutes(wait)}."}
        ctx = {"errors": errors, "email": email, "next": safe_next(next, "")}
        resp = render(request, "signup.html", ctx, status_code=429)
        resp.headers["Retry-After"] = str(wait)
        return resp
    await limiter.attempted(ip)
    state = app_state(request)
    account_id: int | None = None
    try:
        async with state.db.engine.begin() as conn:
            site = await load_site_settings(conn, state.settings)
            account_id = await sign_up(
                conn, email=email, password=password, credits_usd=site.signup_credits_usd
            )
    except IntegrityError:  # the same email signed up concurrently: it is taken
        account_id = None
    if account_id is not None:  # a new account is signed in at once and welcomed
        await mail_verification(request, account_id=account_id, email=normalise_email(email))
        return await finish_login(request, account_id=account_id, next_path=safe_next(next, WELCOME))
    # A taken email: nothing signs in and its password is unchanged; the log-in form keeps the email.
    then = f"&next={quote(safe_next(next))}" if safe_next(next, "") else ""
    return RedirectResponse(f"{SIGNED_UP}&email={quote(normalise_email(email))}{then}", status_code=303)


@router.get("/app/login")
async def login_page(
    request: Request, next: str | None = None, signed_up: str = "", reset: str = "", email: str = ""
) -> Response:
    if await load_user(request):
        return RedirectResponse(safe_next(next), status_code=303)
    ctx = {
        "errors": {},
        "email": email[:320] if plausible_email(email[:320]) else "",
        "next": safe_next(next),
        "signed_up": signed_up == "1",
        "reset": reset == "1",
    }
    return render(request, "login.html", ctx)


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
    ip = client_ip(request)
    key_email = normalise_email(email)
    ctx: dict[str, Any] = {"email": email, "next": safe_next(next)}
    wait, scope = await limiter.retry_after(key_email, ip)
    if wait:
        who = "from your network" if scope == "ip" else "for this email"
        ctx["errors"] = {"form": f"Too many failed log-in attempts {who}. Try again in {_minutes(wait)}."}
        resp = render(request, "login.html", ctx, status_code=429)
        resp.headers["Retry-After"] = str(wait)
        return resp
    account_id: int | None = None
    disabled = is_admin = org_sso_only = False
    if plausible_email(email) and len(password) <= 1024:
        async with app_state(request).db.engine.begin() as conn:
            account_id = await verify_password(conn, email=email, password=password)
            if account_id is not None:
                state = await sign_in_state(conn, account_id=account_id)
                disabled, is_admin = (state.disabled, state.is_admin) if state is not None else (True, False)
                org_sso_only = await in_sso_only_org(conn, account_id=account_id)
    if account_id is None:
        await limiter.failed(key_email, ip)
        ctx["errors"] = {"form": "Wrong email or password."}
        return render(request, "login.html", ctx, status_code=400)
    await limiter.succeeded(key_email, ip)
    if disabled:
        ctx["errors"] = {"form": "This account is disabled. Contact the operator of this gateway."}
        return render(request, "login.html", ctx, status_code=403)
    if not is_admin and (org_sso_only or sso_only(request, email)):  # operators: break-glass access
        ctx["errors"] = {"form": SSO_ONLY_MESSAGE}
        return render(request, "login.html", ctx, status_code=403)
    return await finish_login(request, account_id=account_id, next_path=safe_next(next))


@router.post("/app/logout")
async def logout(request: Request, user: CsrfUser) -> Response:
    response = RedirectResponse("/app/login", status_code=303)
    await end_session(request, response)
    return response


@router.get("/app/sign-in/{token}")
async def signin_link_page(request: Request, token: str) -> Response:
    """Shows whom the link signs in; the link is used by the form's POST (link previews and
    prefetchers that GET it do not use it up)."""
    async with app_state(request).db.engine.connect() as conn:
        email = await peek_signin_link(conn, token=token[:200])
    if email is None:
        return _link_invalid(request)
    return render(request, "signin_link.html", {"email": email, "token": token})


@router.post("/app/sign-in/{token}")
async def signin_link_use(request: Request, token: str, csrf_token: str = Form("")) -> Response:
    check_anon_csrf(request, csrf_token)
    async with app_state(request).db.engine.begin() as conn:
        account_id = await consume_signin_link(conn, token=token[:200])
        row = await sign_in_state(conn, account_id=account_id) if account_id is not None else None
    if account_id is None or row is None:
        return _link_invalid(request)
    target = (
        "/app/account?set_password=1" if not row.has_password else ("/admin" if row.is_admin else "/app/keys")
    )
    response = RedirectResponse(target, status_code=303)
    await start_session(request, response, account_id=account_id)
    return response


def _link_invalid(request: Request) -> Response:
    message = (
        "This sign-in link is not valid: it was used already or has expired. Ask for a new one "
        "(modelgate admin sign-in-link --email …) or log in with your password."
    )
    return render(
        request,
        "error.html",
        {"title": "Sign-in link not valid", "message": message, "back": "/app/login"},
        status_code=404,
    )


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/app/login?next={quote(target)}", status_code=303)
