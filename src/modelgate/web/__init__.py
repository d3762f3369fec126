"""Server-rendered web UI: landing page, account pages (sign-up, keys, billing), the playground,
per-model docs, the API reference and the operator console.

``install(app)`` is the one call ``app.build_app`` makes: it mounts ``/static``, the routers and
the web exception handlers. Routers, one concept each: ``auth`` (landing, sign-up/log-in/log-out,
one-time sign-in links), ``account``, ``keys``, ``billing`` (+ ``exports``), ``playground``,
``docs``, ``apidocs``, ``admin`` and ``admin_status`` (the console). Sessions and CSRF live in
``sessions``, security headers in ``security``; the tables are in ``store/schema.py``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from modelgate.web import (
    account,
    admin,
    admin_catalog,
    admin_money,
    admin_orgs,
    admin_security,
    admin_status,
    admin_usage,
    apidocs,
    auth,
    billing,
    docs,
    exports,
    invitations,
    invite,
    keys,
    org_new,
    org_usage,
    organisation,
    playground,
    project_keys,
    project_team,
    projects,
    recovery,
    requests,
    sso,
    twofactor,
)
from modelgate.web.render import WebState, render
from modelgate.web.security import SecureStaticFiles
from modelgate.web.sessions import CSRFError, LoginRequired, TwoFactorSetupRequired, load_user

STATIC_DIR = Path(__file__).parent / "static"


def _wants_json(request: Request) -> bool:
    return (
        "application/json" in request.headers.get("accept", "")
        or request.headers.get("content-type", "").startswith("application/json")
        or "x-csrf-token" in request.headers
    )


async def _login_required(request: Request, exc: Exception) -> Response:
    if _wants_json(request):
        return JSONResponse(
            {"error": {"message": "Log in to use the playground.", "type": "authentication_error"}},
            status_code=401,
        )
    return auth.login_redirect(request)


async def _csrf_failed(request: Request, exc: Exception) -> Response:
    message = "This form expired or did not come from this site. Reload the page and try again."
    if _wants_json(request):
        return JSONResponse({"error": {"message": message, "type": "csrf_error"}}, status_code=403)
    return render(
        request,
        "error.html",
        {"title": "Request refused", "message": message, "back": request.headers.get("referer")},
        status_code=403,
    )


# Paths people guess (other dashboards' addresses): a browser is sent to the page meant.
GUESSED = {
    "/login": "/app/login",
    "/signin": "/app/login",
    "/sign-in": "/app/login",
    "/signup": "/app/signup",
    "/sign-up": "/app/signup",
    "/register": "/app/signup",
    "/dashboard": "/app",
    "/keys": "/app/keys",
    "/billing": "/app/billing",
    "/playground": "/app/playground",
    "/account": "/app/account",
    "/settings": "/app/account",
    "/app/dashboard": "/app",
    "/app/usage": "/app/billing",
    "/app/logs": "/app/billing#logs",
    "/app/credits": "/app/billing#get-credits",
    "/app/settings": "/app/account",
    "/app/api-keys": "/app/keys",
}


def wants_html(request: Request) -> bool:
    """A browser navigating (``Accept: text/html``), not an API client or a script's fetch."""
    accept = request.headers.get("accept", "")
    return request.method in ("GET", "HEAD") and "text/html" in accept and not _wants_json(request)


def _html_not_found(app: FastAPI) -> None:
    """404s answer browsers with a page (or a redirect for a guessed address); API clients keep the
    JSON envelope of the handler installed before (httpkit/errors.py)."""
    api_handler = app.exception_handlers[StarletteHTTPException]

    async def handler(request: Request, exc: Exception) -> Response:
        if not (isinstance(exc, StarletteHTTPException) and exc.status_code == 404 and wants_html(request)):
            answer = api_handler(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        path = request.url.path
        target = GUESSED.get(path.rstrip("/") or "/") or GUESSED.get(path)
        if target is not None:
            return RedirectResponse(target, status_code=303)
        await load_user(request)
        message = "There is no page at this address. It may have moved, or the link has a typo."
        return render(
            request,
            "error.html",
            {"title": "Page not found", "message": message, "back": "/", "links": True},
            status_code=404,
        )

    app.add_exception_handler(StarletteHTTPException, handler)


async def _favicon() -> Response:
    return FileResponse(
        STATIC_DIR / "favicon.ico",
        media_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def install(app: FastAPI) -> None:
    app.state.web = WebState.create()
    app.mount("/static", SecureStaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route("/favicon.ico", _favicon, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CSRFError, _csrf_failed)
    app.add_exception_handler(admin.NotOperator, admin.not_found)
    app.add_exception_handler(TwoFactorSetupRequired, twofactor.setup_required)
    routers = (
        auth,
        sso,
        account,
        keys,
        organisation,
        billing,
        exports,
        playground,
        requests,
        docs,
        apidocs,
        admin,
        admin_status,
    )
    extra = (admin_catalog, admin_money, admin_orgs, admin_security, admin_usage, recovery, twofactor)
    pages = (projects, org_new, project_team, project_keys, org_usage, invite, invitations)
    for module in (*routers, *pages, *extra):
        app.include_router(module.router)
    _html_not_found(app)
