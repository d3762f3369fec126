"""Security headers of the web face.

Every HTML page (``render``) sends a strict Content-Security-Policy — scripts, styles, images and
``fetch`` only from this origin, no inline script or style, no framing (``frame-ancestors 'none'``
and ``X-Frame-Options: DENY`` for older browsers) — plus ``X-Content-Type-Options: nosniff`` and a
``Referrer-Policy`` that keeps paths (which can hold ids) on this site. Static files get ``nosniff``
and a short cache.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",  # the playground's speech, played from the fetched bytes
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

HTML_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def secure_html(response: Response) -> Response:
    for name, value in HTML_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


class SecureStaticFiles(StaticFiles):
    """``StaticFiles`` with ``nosniff`` and a one-hour cache on every answer."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
        return response
