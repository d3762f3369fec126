"""Corked writes of the HTTP server's connections (``httpserver.CorkedTransport``): uvicorn writes every
ASGI message at once, a system call each; here a whole answer leaves in one write, the SSE frames a
stream has ready at the same moment leave together, a large buffer is not held back, and closing a
connection sends what was buffered first.

Before: a JSON answer was two writes (head, body) and a stream one write per frame."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from modelgate.httpserver import CORK_LIMIT, GuardedHttpToolsProtocol

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
GET = b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """The socket's side: every write the connection makes, as it makes it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def serve_one(app: ASGIApp, request: bytes = GET) -> RecordingTransport:
    config = Config(app=app, lifespan="off", access_log=False)
    config.load()
    config.modelgate_timeouts = (5.0, 5.0)  # type: ignore[attr-defined]
    protocol = GuardedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(50):
        await asyncio.sleep(0)
        if protocol.cycle is not None and protocol.cycle.response_complete:
            break
    await asyncio.sleep(0.01)
    protocol.connection_lost(None)
    return transport


async def test_a_whole_answer_is_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b'{"ok": true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    transport = await serve_one(app)
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b'\r\n\r\n{"ok": true}')


async def test_frames_ready_together_leave_together_and_later_ones_later() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for n in range(5):  # five events already read from the upstream: no wait between them
            await send({"type": "http.response.body", "body": b"data: %d\n\n" % n, "more_body": True})
        await asyncio.sleep(0.005)  # the next event arrives later
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    transport = await serve_one(app)
    assert len(transport.writes) == 2, transport.writes
    first, last = transport.writes
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert all(b"data: %d\n\n" % n in first for n in range(5))
    assert b"[DONE]" not in first
    assert last == b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"


async def test_a_large_buffer_is_written_at_once() -> None:
    seen: list[int] = []
    transport_box: list[RecordingTransport] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"audio/mpeg")]}
        )
        await send({"type": "http.response.body", "body": b"x" * (CORK_LIMIT + 1), "more_body": True})
        seen.append(len(transport_box[0].writes))  # still inside the same callback
        await send({"type": "http.response.body", "body": b""})

    original = RecordingTransport.__init__

    def remember(self: RecordingTransport) -> None:
        original(self)
        transport_box.append(self)

    RecordingTransport.__init__ = remember  # type: ignore[method-assign]
    try:
        transport = await serve_one(app)
    finally:
        RecordingTransport.__init__ = original  # type: ignore[method-assign]
    assert seen == [1]  # head and the large frame went out before the callback ended
    assert b"".join(transport.writes).endswith(b"0\r\n\r\n")


async def test_closing_sends_what_was_buffered_first() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"2"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    transport = await serve_one(app)
    assert transport.closed
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\nok")
