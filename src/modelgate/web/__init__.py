"""Server-rendered web UI: account pages (sign-up, keys, billing), the playground, per-model docs.

``install(app)`` is the one call ``app.build_app`` makes: it mounts ``/static``, the routers and
the two web exception handlers. Routers, one concept each: ``auth`` (sign-up/log-in/log-out),
``keys``, ``billing``, ``playground``, ``docs``. Sessions and CSRF live in ``sessions``; their tables
are in ``store/schema.py`` with every other table.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles

from modelgate.web import auth, billing, docs, keys, playground
from modelgate.web.render import WebState, render
from modelgate.web.sessions import CSRFError, LoginRequired

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


def install(app: FastAPI) -> None:
    app.state.web = WebState.create()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CSRFError, _csrf_failed)
    for module in (auth, keys, billing, playground, docs):
        app.include_router(module.router)
