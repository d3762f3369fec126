"""The HTTP server's connections: uvicorn's httptools protocol with time limits for slow or idle
clients, and its connection cap (docs/deploy.md, "Slow or idle clients").

uvicorn alone closes a kept-alive connection that stays idle after a response, but nothing bounds a
new connection that never sends a byte, a request whose headers trickle in (slowloris), or a body
that never ends: each holds a socket, a file descriptor and, for a body, an application task, for as
long as the client likes. Here:

- the request line and headers must arrive within ``http_header_timeout`` seconds of the connection
  opening, or of the previous response on a kept-alive connection (an idle connection is closed
  after that long; uvicorn's shorter keep-alive timeout still applies between requests);
- the body must arrive within ``http_body_timeout`` seconds of the headers.

A request cut by either limit is answered ``408 Request Timeout`` (when nothing was answered yet)
and its connection closed; the application sees a client that left (a door request leaves no trace:
it was never authenticated). Responses that take long, and streams, are not limited: only what the
client owes the server is.

The number of open connections per worker is capped by uvicorn's ``limit_concurrency``
(``max_connections``): beyond it a request is answered 503 at once. ``uvicorn_options`` gives
``modelgate serve`` and the tests the same settings.

While the server drains (``drain.py``), every response carries ``Connection: close``.

Writes are **corked** (``CorkedTransport``): uvicorn writes each ASGI message at once; here a
response's head and body leave in one ``write`` system call when the response completes, and the SSE
frames of a stream that were ready at the same time leave together at the end of the event loop's
callback. A buffer over ``CORK_LIMIT`` bytes is written at once, so the transport's flow control
still sees a large response as it grows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelgate.settings import Settings

log = logging.getLogger("modelgate.http")

PROTOCOL = "modelgate.httpserver:GuardedHttpToolsProtocol"  # uvicorn's ``http`` option

_TIMEOUT_BODY = b"Request Timeout: the request was not received in time\n"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _TIMEOUT_BODY
)


CORK_LIMIT = 64 * 1024


class CorkedTransport(asyncio.Transport):
    """A connection's transport whose writes made during one event-loop callback go out as one
    ``write`` when it ends (``loop.call_soon``); closing or aborting flushes or drops them first."""

    __slots__ = ("_buffer", "_loop", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        buffer = self._buffer
        buffer.append(bytes(data) if data.__class__ is not bytes else data)
        self._size += len(data)
        if self._size > CORK_LIMIT:
            self.flush()
        elif len(buffer) == 1:
            self._loop.call_soon(self.flush)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
        buffer.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._buffer.clear()
        self._size = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The options ``uvicorn.run`` / ``uvicorn.Config`` take for the gateway's connection guards."""
    return {"http": PROTOCOL, "limit_concurrency": settings.max_connections}


def guard_timeouts(config: Any) -> tuple[float, float]:
    """(header, body) timeouts of a server, read once per process: set ``config.modelgate_timeouts``
    to choose them (tests), otherwise they come from the environment's settings."""
    timeouts: tuple[float, float] | None = getattr(config, "modelgate_timeouts", None)
    if timeouts is None:
        settings = Settings()
        timeouts = (settings.http_header_timeout, settings.http_body_timeout)
        config.modelgate_timeouts = timeouts
    return timeouts


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One client connection, with the header and body deadlines of the module docstring."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timeout, self._body_timeout = guard_timeouts(config)
        self._deadline: asyncio.TimerHandle | None = None
        self._started = False  # some bytes of the current request arrived

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Every write through the cork; flow control (FlowControl) keeps the real transport.
        self.transport = CorkedTransport(transport, self.loop)
        self._started = False
        self._arm(self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._started = True

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if getattr(self.server_state, "modelgate_draining", False):  # drain.py: no request after this one
            self.cycle.keep_alive = False  # the response says ``Connection: close``
        # httptools calls on_message_complete right after this when there is no body to read.
        self._arm(self._body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._started = False

    def on_response_complete(self) -> None:
        # A whole answer leaves now, head and body in one write (not at the end of the callback).
        cork = self.transport
        if cork.__class__ is CorkedTransport:
            cork.flush()
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline and self._deadline is None:
            self._arm(self._header_timeout)  # the next request's headers (or idle until closed)

    def _expired(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        cycle = self.cycle
        waiting = cycle is not None and not cycle.response_complete  # the application is reading it
        if self._started and not (waiting and cycle.response_started):
            self.transport.write(_TIMEOUT_RESPONSE)
        if waiting:
            cycle.disconnected = True  # its reads end (the client left); whatever it sends is dropped
            cycle.message_event.set()
        log.debug("closing a connection from %s: request not received in time", self.client)
        self.transport.close()
