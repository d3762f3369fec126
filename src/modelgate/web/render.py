"""Templates and the per-app web state (no module-level state: it hangs off ``app.state.web``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from markupsafe import Markup, escape
from starlette.responses import Response

from modelgate.billing.amounts import usd_exact
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state
from modelgate.web.charts import money
from modelgate.web.openapi import load_template
from modelgate.web.ratelimit import LoginLimiter, SignUpLimiter
from modelgate.web.security import secure_html

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

TEMPLATE_DIR = Path(__file__).parent / "templates"


def usd(credits: int | None) -> str:
    """Credits written as money: ``$1,234.50``, ``$0.000016``, ``-$0.0042``."""
    return money((credits or 0) / CREDITS_PER_USD)


_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def linkify(text: str | None) -> Markup:
    """Plain text (an operator's help text) escaped, its http(s) URLs made links."""
    out: list[str] = []
    last = 0
    raw = text or ""
    for found in _URL.finditer(raw):
        out.append(str(escape(raw[last : found.start()])))
        url = escape(found.group(0))
        out.append(f'<a href="{url}" rel="noopener noreferrer">{url}</a>')
        last = found.end()
    out.append(str(escape(raw[last:])))
    return Markup("".join(out))


STOPPED = 499  # the client stopped the reply (closed the stream): not an error, billed what was produced


def status_tag(row: dict[str, Any]) -> Markup:
    """A request-log row's status as people read it: ``success``, ``stopped`` (the client closed
    the reply, status 499) or ``error 403``."""
    if row.get("http_status") == STOPPED:
        label, css = "stopped", "warn"
    elif row.get("status") == "success":
        label, css = "success", "ok"
    else:
        label, css = f"error {row.get('http_status')}", "bad"
    return Markup('<span class="tag {}" data-status="{}">{}</span>').format(css, label.split()[0], label)


def credits_fmt(credits: int | None) -> str:
    return f"{credits or 0:,}"


@dataclass
class WebState:
    chat_template: dict[str, Any]
    by_kind: dict[str, dict[str, Any]] = field(default_factory=dict)  # built on first use
    login_limiter: LoginLimiter = field(default_factory=LoginLimiter)
    signup_limiter: SignUpLimiter = field(default_factory=SignUpLimiter)
    _templates: Jinja2Templates | None = None

    @classmethod
    def create(cls) -> WebState:
        return cls(chat_template=load_template())

    def openapi_template(self, kind: str) -> dict[str, Any]:
        """The OpenAPI template of a model type (``ModelSpec.type``, ``web/openapi.py``)."""
        if kind == "chat":
            return self.chat_template
        if kind not in self.by_kind:
            self.by_kind[kind] = load_template(kind)
        return self.by_kind[kind]

    @property
    def templates(self) -> Jinja2Templates:
        """Built on the first page rendered: an API-only gateway never loads Jinja2 (~2 MB)."""
        if self._templates is None:
            from starlette.templating import Jinja2Templates

            templates = Jinja2Templates(directory=str(TEMPLATE_DIR))  # autoescape on for .html
            templates.env.filters["usd"] = usd
            templates.env.filters["credits"] = credits_fmt
            templates.env.filters["usd_exact"] = usd_exact
            templates.env.filters["linkify"] = linkify
            templates.env.filters["status_tag"] = status_tag
            self._templates = templates
        return self._templates


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> Response:
    from modelgate.web.sessions import anon_csrf_token

    ctx: dict[str, Any] = {"user": getattr(request.state, "web_user", None)}
    ctx.update(context or {})
    if ctx["user"] is None:
        ctx.setdefault("csrf_token", anon_csrf_token(request))
        providers = app_state(request).settings.oidc_providers
        ctx.setdefault("sso_providers", [(p.name, p.label or p.name) for p in providers])
    else:
        ctx.setdefault("csrf_token", ctx["user"].csrf_token)
    response = web_state(request).templates.TemplateResponse(request, name, ctx, status_code=status_code)
    if ctx["user"] is None:
        from modelgate.web.sessions import set_anon_csrf_cookie

        set_anon_csrf_cookie(request, response, ctx["csrf_token"])
    return secure_html(response)


USER_UNAVAILABLE = "its provider is not set up on this gateway yet (the operator can enable it)"


def unavailable_for_viewer(request: Request, reason: str | None) -> str | None:
    """Why a model cannot run, worded for whoever is looking: operators get the catalogue's reason
    (which environment variables to set); everyone else a sentence that asks nothing of them."""
    if reason is None:
        return None
    user = getattr(request.state, "web_user", None)
    return reason if user is not None and user.is_admin else USER_UNAVAILABLE
