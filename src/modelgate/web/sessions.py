"""Browser sessions and CSRF protection.

A session is a random 256-bit token in an HttpOnly, SameSite=Lax cookie (Secure when
``settings.secure_cookies``); the server keeps only its SHA-256 digest in ``web_sessions`` with the
account, a per-session CSRF token and an expiry, so logging out (or deleting the row) ends it at once.

CSRF: every state-changing form carries ``csrf_token``; ``fetch`` calls send ``X-CSRF-Token``.
Logged in, the token is the session's; before log-in (sign-up and log-in forms) it is a random
double-submit cookie ``mg_csrf`` that the form must echo.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypedDict

from fastapi import Depends, Request
from starlette.responses import Response

from modelgate.httpkit.deps import app_state
from modelgate.store import web_sessions as session_rows
from modelgate.store.organisations import ORG_WIDE_ROLES, memberships, org_role
from modelgate.store.totp import two_factor_enabled, two_factor_required

SESSION_COOKIE = "mg_session"
CSRF_COOKIE = "mg_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL = timedelta(days=14)


class LoginRequired(Exception):
    """No valid session: pages redirect to the log-in page, fetch endpoints get a 401."""


class CSRFError(Exception):
    """A state-changing request without the right CSRF token."""


class TwoFactorSetupRequired(Exception):
    """The operator requires two-factor sign-in and this account has not set it up: pages send it
    to ``/app/account/two-factor`` (``web/twofactor.py``)."""


ORG_COOKIE = "mg_org"  # the organisation the switcher chose (checked against memberships on every load)

# What an account that must still set up two-factor sign-in may open.
TWO_FACTOR_EXEMPT = ("/app/account/two-factor", "/app/logout")


@dataclass(frozen=True, slots=True)
class WebUser:
    account_id: int
    email: str
    csrf_token: str
    is_admin: bool
    # The organisation the pages act on (the switcher's cookie, docs/organisations.md): the person's
    # personal one, or a team organisation where they are an owner, admin or billing member.
    org_id: int = 0
    org_role: str = "owner"
    orgs: tuple[tuple[int, str], ...] = ()  # (id, name) of the organisations the switcher offers


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _CookieOptions(TypedDict):
    httponly: bool
    samesite: Literal["lax", "strict", "none"] | None
    secure: bool
    path: str | None


def _cookie_kwargs(request: Request) -> _CookieOptions:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": app_state(request).settings.secure_cookies,
        "path": "/",
    }


async def start_session(request: Request, response: Response, *, account_id: int) -> None:
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    async with app_state(request).db.engine.begin() as conn:
        await session_rows.insert_session(
            conn,
            digest=_digest(token),
            account_id=account_id,
            csrf_token=secrets.token_urlsafe(32),
            now=now,
            expires_at=now + SESSION_TTL,
        )
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(SESSION_TTL.total_seconds()), **_cookie_kwargs(request)
    )
    response.delete_cookie(CSRF_COOKIE, path="/")


async def end_session(request: Request, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with app_state(request).db.engine.begin() as conn:
            await session_rows.delete_session(conn, digest=_digest(token))
    response.delete_cookie(SESSION_COOKIE, path="/")


async def load_user(request: Request) -> WebUser | None:
    if hasattr(request.state, "web_user"):
        user: WebUser | None = request.state.web_user
        return user
    user = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with app_state(request).db.engine.connect() as conn:
            row = await session_rows.session_by_digest(conn, digest=_digest(token))
        if row is not None and row.expires_at > datetime.now(UTC):
            async with app_state(request).db.engine.connect() as conn:
                org_id, role, offered = await _organisation(request, conn, row.account_id)
            user = WebUser(row.account_id, row.email, row.csrf_token, row.is_admin, org_id, role, offered)
    request.state.web_user = user
    return user


async def _organisation(
    request: Request, conn: Any, account_id: int
) -> tuple[int, str, tuple[tuple[int, str], ...]]:
    """The organisation chosen with the switcher, if the person may see all of it; else their own."""
    offered = tuple(
        (m.org_id, "Personal" if m.personal else m.name)
        for m in await memberships(conn, account_id=account_id)
        if m.org_id == account_id or m.role in ORG_WIDE_ROLES
    )
    raw = request.cookies.get(ORG_COOKIE, "")
    chosen = int(raw) if raw.isdigit() and len(raw) <= 10 else account_id
    if chosen != account_id and any(o[0] == chosen for o in offered):
        role = await org_role(conn, org_id=chosen, account_id=account_id)
        if role in ORG_WIDE_ROLES:
            return chosen, role, offered
    return account_id, "owner", offered


async def current_user_only(request: Request) -> WebUser:
    """The signed-in user, whether or not the two-factor rule is met (enrolment pages)."""
    user = await load_user(request)
    if user is None:
        raise LoginRequired
    return user


async def current_user(request: Request) -> WebUser:
    user = await current_user_only(request)
    await enforce_two_factor(request, user)
    return user


async def enforce_two_factor(request: Request, user: WebUser) -> None:
    """TwoFactorSetupRequired when the operator requires two-factor sign-in and ``user`` has none."""
    if request.url.path.startswith(TWO_FACTOR_EXEMPT):
        return
    async with app_state(request).db.engine.connect() as conn:
        if not await two_factor_required(conn):
            return
        if await two_factor_enabled(conn, account_id=user.account_id):
            return
    raise TwoFactorSetupRequired


async def csrf_user(request: Request) -> WebUser:
    """The logged-in user of a state-changing request whose CSRF token (form field or header) matches."""
    user = await current_user(request)
    await check_user_csrf(request, user)
    return user


async def check_user_csrf(request: Request, user: WebUser) -> None:
    """CSRFError unless the request carries ``user``'s token (header or form field)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        await request.body()  # kept, so the endpoint can still read the body the form was parsed from
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent.encode(), user.csrf_token.encode()):
        raise CSRFError


def anon_csrf_token(request: Request) -> str:
    token = getattr(request.state, "anon_csrf", None) or request.cookies.get(CSRF_COOKIE)
    if not token or len(token) < 32:
        token = secrets.token_urlsafe(32)
    request.state.anon_csrf = token
    return str(token)


def set_anon_csrf_cookie(request: Request, response: Response, token: str) -> None:
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, max_age=3600 * 12, **_cookie_kwargs(request))


def check_anon_csrf(request: Request, sent: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not sent or not secrets.compare_digest(cookie.encode(), sent.encode()):
        raise CSRFError


CurrentUser = Annotated[WebUser, Depends(current_user)]
CsrfUser = Annotated[WebUser, Depends(csrf_user)]
