"""A scripted upstream: a real aiohttp.web server on 127.0.0.1 (ephemeral port) that answers each
request with the next scripted reply and records what it received.

Replies: ``Reply`` (status + JSON/raw body, optional delay before the head), ``SSEReply`` (a list of
``SSE`` events, each with an optional delay; ``reset_after`` closes the transport after that many
events, ``tail`` appends raw bytes). Protocol fakes (``gemini_server``, ``anthropic_server``) add
their routes, auth checks and builders of real-shaped bodies on top.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from aiohttp import web


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    # The JSON body's keys, directly: ``fake.requests[-1]["messages"]``, ``"n" in fake.last``.
    def __getitem__(self, key: str) -> Any:
        return self.json[key]

    def __contains__(self, key: object) -> bool:
        body = self.json
        return isinstance(body, dict) and key in body

    def get(self, key: str, default: Any = None) -> Any:
        body = self.json
        return body.get(key, default) if isinstance(body, dict) else default


@dataclass(slots=True)
class Reply:
    """A whole response: ``body`` is JSON-encoded unless it is ``bytes`` (sent as is)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the response head (a slow first byte)
    content_type: str = "application/json"


@dataclass(slots=True)
class SSE:
    data: Any  # JSON-encoded unless str/bytes
    event: str | None = None
    delay: float = 0.0  # seconds to wait before this event


@dataclass(slots=True)
class SSEReply:
    events: list[SSE]
    status: int = 200
    delay: float = 0.0
    reset_after: int | None = None  # close the transport after this many events
    tail: bytes = b""  # raw bytes written after the events (e.g. a non-SSE JSON error)
    headers: dict[str, str] = field(default_factory=dict)


Script = Reply | SSEReply
Guard = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def _encode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value)


class ScriptedServer:
    """The protocol-neutral core. Subclasses set ``routes`` and may override ``guard``."""

    routes: tuple[str, ...] = ("/{tail:.*}",)

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[Script] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.scheme = "http"

    # -- scripting -----------------------------------------------------------------
    def add(self, *replies: Script) -> None:
        self._script.extend(replies)

    def clear(self) -> None:
        """Forget the replies not used (a round whose refused requests never reached the upstream)."""
        self._script.clear()

    @property
    def pending(self) -> int:
        return len(self._script)

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    async def guard(self, request: web.Request) -> web.StreamResponse | None:
        """A protocol-level refusal (bad key, missing header) before the script is consulted."""
        return None

    async def default_reply(self, request: web.Request, body: bytes) -> web.StreamResponse | None:
        """The answer when nothing is scripted (None: the 599 "no scripted reply")."""
        return None

    # -- lifecycle ------------------------------------------------------------------
    async def start(self, *, tls: ssl.SSLContext | None = None) -> None:
        """Serve on 127.0.0.1 (an ephemeral port); with ``tls``, over https."""
        self.scheme = "https" if tls is not None else "http"
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for route in self.routes:
            app.router.add_route("*", route, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- serving --------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        refused = await self.guard(request)
        if refused is not None:
            return refused
        if not self._script:
            default = await self.default_reply(request, body)
            if default is not None:
                return default
            return web.json_response({"error": {"message": "fake upstream: no scripted reply"}}, status=599)
        reply = self._script.popleft()
        if isinstance(reply, SSEReply):
            return await self._sse(request, reply)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(
            status=reply.status,
            body=_encode(reply.body),
            headers=reply.headers,
            content_type=reply.content_type,
        )

    async def _sse(self, request: web.Request, reply: SSEReply) -> web.StreamResponse:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        resp = web.StreamResponse(status=reply.status, headers=reply.headers)
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        for n, ev in enumerate(reply.events):
            if reply.reset_after is not None and n >= reply.reset_after:
                break
            if ev.delay:
                await asyncio.sleep(ev.delay)
            frame = b""
            if ev.event is not None:
                frame += b"event: " + ev.event.encode() + b"\n"
            frame += b"data: " + _encode(ev.data) + b"\n\n"
            await resp.write(frame)
        if reply.reset_after is not None:
            transport = request.transport
            if transport is not None:
                transport.close()
            return resp
        if reply.tail:
            await resp.write(reply.tail)
        await resp.write_eof()
        return resp
