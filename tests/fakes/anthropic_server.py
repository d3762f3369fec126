"""A fake of the Anthropic Messages API: ``POST /v1/messages`` with ``x-api-key`` (401
``authentication_error`` when wrong or missing) and ``anthropic-version`` (400 when missing), as the
real service checks them. Streams use named SSE events (``event: message_start`` ...).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes import SSE, Reply, ScriptedServer, SSEReply, load


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status)


class AnthropicFake(ScriptedServer):
    def __init__(self, *, api_key: str | None = "test-anthropic-key") -> None:
        super().__init__()
        self.api_key = api_key

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def guard(self, request: web.Request) -> web.StreamResponse | None:
        if request.method != "POST" or request.path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return _error(404, "not_found_error", f"Not found: {request.path}")
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        return None


def anthropic_sse(events: list[dict[str, Any]], *, event_delay: float = 0.0, **kw: Any) -> SSEReply:
    """Recorded events (``{"event": name, "data": {...}}``) as an SSE reply."""
    return SSEReply([SSE(e["data"], event=e["event"], delay=event_delay) for e in events], **kw)


def anthropic_error(status: int) -> Reply:
    return Reply(status=status, body=load("anthropic_errors.json")[str(status)])
