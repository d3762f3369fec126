"""``HEAD`` wherever ``GET`` is served (RFC 9110 §9.3.2): the request runs as a ``GET`` and the
answer goes out with its status and headers (``content-length`` included) but no body.

Clients probe with it — Claude Code sends ``HEAD /`` on start, load balancers ``HEAD /health`` —
and FastAPI's routes answer only the methods they declare (405 otherwise). A path without a ``GET``
answers ``HEAD`` exactly as it answers ``GET`` (a 405 or 404), minus the body.
"""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]


def as_get(scope: Scope, send: Any) -> tuple[Scope, Any]:
    """For a ``HEAD`` request: the scope as ``GET``, and a ``send`` that keeps every body empty."""

    async def send_head(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return  # the rest of the body is never sent; the final empty message ends the answer
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return {**scope, "method": "GET"}, send_head


def is_head(scope: Scope) -> bool:
    return scope.get("type") == "http" and scope.get("method") == "HEAD"
