"""Single sign-on pages: ``/app/sso/{provider}`` starts an OpenID Connect sign-in and
``/app/sso/{provider}/callback`` completes it (``identity/oidc.py``, ``identity/sso.py``).

The sign-in in progress is kept in the database (the digest of its ``state``, its PKCE verifier
and nonce, for ten minutes, good once), so any instance can complete it; the ``state`` is also
set in a cookie of this browser, and the callback must carry the same one (a callback link from
someone else's sign-in is refused).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from modelgate.httpkit.deps import app_state
from modelgate.identity.oidc import RelyingParty, SSOError
from modelgate.identity.sso import sign_in
from modelgate.store import identity as store
from modelgate.web.auth import safe_next
from modelgate.web.render import render
from modelgate.web.sessions import start_session

router = APIRouter(include_in_schema=False)
log = logging.getLogger("modelgate.sso")

STATE_COOKIE = "mg_sso_state"
LOGIN_TTL = timedelta(minutes=10)


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _party(request: Request, name: str) -> RelyingParty | None:
    state = app_state(request)
    parties: dict[str, RelyingParty] = state.extras.setdefault("sso", {})
    if name not in parties:
        provider = next((p for p in state.settings.oidc_providers if p.name == name), None)
        if provider is None:
            return None
        parties[name] = RelyingParty(provider)
    return parties[name]


def _redirect_uri(request: Request, name: str) -> str:
    base = app_state(request).settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/app/sso/{name}/callback"


def _failed(request: Request, message: str, status_code: int = 400) -> Response:
    return render(
        request,
        "error.html",
        {"title": "Single sign-on failed", "message": message, "back": "/app/login"},
        status_code=status_code,
    )


@router.get("/app/sso/{name}")
async def sso_start(request: Request, name: str, next: str | None = None) -> Response:
    party = _party(request, name[:64])
    if party is None:
        return _failed(request, "There is no such sign-in provider on this gateway.", 404)
    redirect_uri = _redirect_uri(request, party.provider.name)
    try:
        start = await party.begin(redirect_uri=redirect_uri)
    except SSOError as exc:
        log.warning("single sign-on with %s could not start: %s", name, exc)
        return _failed(request, str(exc), 502)
    async with app_state(request).db.engine.begin() as conn:
        await store.save_oidc_login(
            conn,
            digest=_digest(start.state),
            provider=party.provider.name,
            code_verifier=start.code_verifier,
            nonce=start.nonce,
            next_path=safe_next(next),
            expires_at=datetime.now(UTC) + LOGIN_TTL,
        )
    response = RedirectResponse(start.url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        start.state,
        max_age=int(LOGIN_TTL.total_seconds()),
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back here
        secure=app_state(request).settings.secure_cookies,
        path="/app/sso/",
    )
    return response


@router.get("/app/sso/{name}/callback")
async def sso_callback(
    request: Request,
    name: str,
    code: str = "",
    state: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    party = _party(request, name[:64])
    if party is None:
        return _failed(request, "There is no such sign-in provider on this gateway.", 404)
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not state or not cookie or not secrets.compare_digest(cookie.encode(), state[:200].encode()):
        return _failed(request, "This sign-in did not start in this browser, or it expired. Try again.")
    db = app_state(request).db
    async with db.engine.begin() as conn:
        pending = await store.take_oidc_login(conn, digest=_digest(state[:200]))
    expired = pending is None or pending.expires_at.replace(tzinfo=pending.expires_at.tzinfo or UTC) < (
        datetime.now(UTC)
    )
    if pending is None or expired or pending.provider != party.provider.name:
        return _failed(request, "This sign-in was used already or has expired. Try again.")
    if error or not code:
        reason = (error_description or error or "no authorization code")[:200]
        return _failed(request, f"The identity provider did not sign you in: {reason}", 403)
    try:
        who = await party.finish(
            code=code[:2000],
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
            redirect_uri=_redirect_uri(request, party.provider.name),
        )
        async with db.engine.begin() as conn:
            result = await sign_in(
                conn, provider=party.provider.name, who=who, rules=app_state(request).settings.group_rules
            )
    except SSOError as exc:
        log.info("single sign-on with %s refused: %s", name, exc)
        return _failed(request, str(exc), 403)
    response = RedirectResponse(pending.next_path, status_code=303)
    response.delete_cookie(STATE_COOKIE, path="/app/sso/")
    await start_session(request, response, account_id=result.account_id)
    return response
