"""Mailed links: email verification after sign-up, "forgot password" and the password-reset link.

Both kinds of link are one-time tokens (``store/mail_tokens.py``): a GET shows what the link does,
only the form's POST uses it (link previews and prefetchers do not use it up). The "forgot password"
form answers the same whether or not the email has an account, and mails in the background.
Without SMTP the page says to ask the operator, who makes a reset link on the console.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.hashing import hash_password
from modelgate.accounts.passwords import normalise_email, plausible_email, validate_sign_up
from modelgate.httpkit.deps import app_state
from modelgate.mail import messages
from modelgate.mail.sender import Mailer
from modelgate.store import mail_tokens
from modelgate.store.totp import two_factor_enabled
from modelgate.web.render import render, web_state
from modelgate.web.sessions import CsrfUser, check_anon_csrf, load_user

router = APIRouter(include_in_schema=False)

VERIFY_TTL = timedelta(hours=48)
RESET_TTL = timedelta(hours=1)


def mailer(request: Request) -> Mailer:
    found: Mailer = app_state(request).extras["mailer"]
    return found


def base_url(request: Request) -> str:
    return app_state(request).settings.public_url or str(request.base_url)


async def mail_verification(request: Request, *, account_id: int, email: str) -> None:
    """Mail a verification link (in the background); nothing without SMTP."""
    sender = mailer(request)
    if not sender.configured:
        return
    async with app_state(request).db.engine.begin() as conn:
        token = await mail_tokens.create_token(conn, account_id=account_id, purpose="verify", ttl=VERIFY_TTL)
    sender.submit(messages.verification(to=email, base_url=base_url(request), token=token, ttl=VERIFY_TTL))


async def make_reset_link(request: Request, *, account_id: int) -> str:
    """A fresh one-time reset link (earlier ones stop working); the operator console shows it."""
    async with app_state(request).db.engine.begin() as conn:
        token = await mail_tokens.create_token(conn, account_id=account_id, purpose="reset", ttl=RESET_TTL)
    return messages.link(base_url(request), messages.RESET_PATH + token)


async def security_summary(request: Request, account_id: int) -> dict[str, bool]:
    """What the Account page says about the email and two-factor sign-in."""
    async with app_state(request).db.engine.connect() as conn:
        found = await mail_tokens.account_email(conn, account_id=account_id)
        two_factor = await two_factor_enabled(conn, account_id=account_id)
    q = request.query_params
    return {
        "verified": found is not None and found[1] is not None,
        "mail": mailer(request).configured,
        "two_factor": two_factor,
        "verification_sent": q.get("verification_sent") == "1",
        "two_factor_off": q.get("two_factor") == "off",
    }


def _invalid(request: Request, what: str) -> Response:
    message = f"This {what} link is not valid: it was used already, a newer one was sent, or it expired."
    return render(
        request,
        "error.html",
        {"title": f"{what.capitalize()} link not valid", "message": message, "back": "/app/login"},
        status_code=404,
    )


@router.get("/app/verify/{token}")
async def verify_page(request: Request, token: str) -> Response:
    async with app_state(request).db.engine.connect() as conn:
        owner = await mail_tokens.peek_token(conn, token=token, purpose="verify")
    if owner is None:
        return _invalid(request, "verification")
    await load_user(request)
    return render(request, "mail_link.html", {"kind": "verify", "email": owner.email, "token": token})


@router.post("/app/verify/{token}")
async def verify_use(request: Request, token: str, csrf_token: str = Form("")) -> Response:
    user = await load_user(request)
    signed_in = user is not None and secrets.compare_digest(user.csrf_token.encode(), csrf_token.encode())
    if not signed_in:  # signed in, the form carries the session's token; else the anonymous one
        check_anon_csrf(request, csrf_token)
    async with app_state(request).db.engine.begin() as conn:
        owner = await mail_tokens.consume_token(conn, token=token, purpose="verify")
        if owner is not None:
            await mail_tokens.mark_email_verified(conn, account_id=owner.account_id)
    if owner is None:
        return _invalid(request, "verification")
    return render(request, "mail_link.html", {"kind": "verified", "email": owner.email})


@router.post("/app/account/verify")
async def resend_verification(request: Request, user: CsrfUser) -> Response:
    async with app_state(request).db.engine.connect() as conn:
        found = await mail_tokens.account_email(conn, account_id=user.account_id)
    if found is not None and found[1] is None:
        await mail_verification(request, account_id=user.account_id, email=found[0])
    return RedirectResponse("/app/account?verification_sent=1", status_code=303)


@router.get("/app/forgot")
async def forgot_page(request: Request, sent: str = "") -> Response:
    ctx = {"mail": mailer(request).configured, "sent": sent == "1", "errors": {}, "email": ""}
    return render(request, "forgot.html", ctx)


@router.post("/app/forgot")
async def forgot_submit(request: Request, email: str = Form(""), csrf_token: str = Form("")) -> Response:
    check_anon_csrf(request, csrf_token)
    sender = mailer(request)
    address = normalise_email(email)
    if not sender.configured or not plausible_email(address) or "@" not in address:
        errors = {"email": "Enter the email address of your account."} if sender.configured else {}
        ctx = {"mail": sender.configured, "sent": False, "errors": errors, "email": email}
        return render(request, "forgot.html", ctx, status_code=400)
    limiter = web_state(request).signup_limiter  # mails per network, as sign-ups are
    ip = request.client.host if request.client else "unknown"
    if not await limiter.retry_after(ip):
        await limiter.attempted(ip)
        async with app_state(request).db.engine.begin() as conn:
            owner = await mail_tokens.account_for_email(conn, email=address)
            token = None
            if owner is not None:
                token = await mail_tokens.create_token(
                    conn, account_id=owner.account_id, purpose="reset", ttl=RESET_TTL
                )
        if owner is not None and token is not None:
            mail = messages.password_reset(
                to=owner.email, base_url=base_url(request), token=token, ttl=RESET_TTL
            )
            sender.submit(mail)
    # The same answer for every address (and when limited): nothing tells whether it has an account.
    return RedirectResponse("/app/forgot?sent=1", status_code=303)


@router.get("/app/reset/{token}")
async def reset_page(request: Request, token: str) -> Response:
    async with app_state(request).db.engine.connect() as conn:
        owner = await mail_tokens.peek_token(conn, token=token, purpose="reset")
    if owner is None:
        return _invalid(request, "password reset")
    return render(request, "reset.html", {"email": owner.email, "token": token, "errors": {}})


@router.post("/app/reset/{token}")
async def reset_submit(
    request: Request,
    token: str,
    new_password: str = Form(""),
    confirm_password: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    check_anon_csrf(request, csrf_token)
    errors: dict[str, str] = {}
    problem = validate_sign_up("x@example.com", new_password).get("password")
    if problem:
        errors["new_password"] = problem
    elif new_password != confirm_password:
        errors["confirm_password"] = "The two passwords differ."
    async with app_state(request).db.engine.begin() as conn:
        if errors:
            owner = await mail_tokens.peek_token(conn, token=token, purpose="reset")
        else:
            owner = await mail_tokens.consume_token(conn, token=token, purpose="reset")
            if owner is not None:
                hashed = hash_password(new_password)
                await mail_tokens.reset_password(conn, account_id=owner.account_id, password_hash=hashed)
    if owner is None:
        return _invalid(request, "password reset")
    if errors:
        ctx = {"email": owner.email, "token": token, "errors": errors}
        return render(request, "reset.html", ctx, status_code=400)
    return RedirectResponse("/app/login?reset=1", status_code=303)
