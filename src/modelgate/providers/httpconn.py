"""One upstream HTTP/1.1 connection: an ``asyncio.Protocol`` feeding llhttp (``httptools``).

It parses one response at a time as bytes arrive, buffers the body (pausing the socket past
``HIGH_WATER`` bytes until the reader catches up), and turns resets, malformed bytes and unasked
answers into this module's ``HTTPClientError``s. ``providers.httpclient`` pools these connections
and reads responses from them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools

HIGH_WATER = 256 * 1024  # buffered body bytes before the socket is paused


class HTTPClientError(Exception):
    """Base of the upstream HTTP client's failures."""


class ConnectError(HTTPClientError):
    """The TCP/TLS connection could not be made."""


class ConnectionClosed(HTTPClientError):
    """The server closed or reset the connection, or sent bytes that are not HTTP."""


class ReadTimeout(HTTPClientError):
    """No response head, or no more body, within the read (or total) timeout."""


class Connection(asyncio.Protocol):
    """One keep-alive connection; parses one response at a time."""

    __slots__ = (
        "_buffer",
        "_buffered",
        "_closed",
        "_head",
        "_paused",
        "_waiter",
        "complete",
        "error",
        "headers",
        "idle_since",
        "keep_alive",
        "loop",
        "parser",
        "reason",
        "status",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self._closed = False
        self.error: HTTPClientError | None = None
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self.complete = False
        self.keep_alive = False
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._head: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.parser is None:  # bytes nobody asked for (between requests): not HTTP we expect
            self._fail(ConnectionClosed("unexpected bytes from the server between requests"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionClosed("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ConnectionClosed(f"malformed HTTP response ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self.parser is not None and not self.complete:
            if self._head is not None and self._head.done() and self._reads_to_eof():
                self.on_message_complete()  # a body delimited by the end of the connection
            else:
                what = type(exc).__name__ if exc is not None else "closed"
                self._fail(ConnectionClosed(f"the server closed the connection ({what})"))
        self._wake()

    # --- httptools callbacks ----------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self.reason = status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = self.headers.get(key)
        self.headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real head follows
            self.headers = {}
            return
        if self.complete:  # a second answer to one request: the connection cannot be trusted
            self._fail(ConnectionClosed("the server sent an answer nobody asked for"))
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        if self._head is not None and not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.complete or self.error is not None:
            return
        self._buffer.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        waiter = self._waiter  # _wake inline: a call per body piece fewer
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self.status == 0:  # end of an interim response
            return
        self.complete = True
        self._wake()

    # --- used by the client -----------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed or self.transport is None or self.transport.is_closing()

    def _reads_to_eof(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in self.headers.get(
            "transfer-encoding", ""
        )

    def _fail(self, error: HTTPClientError) -> None:
        if self.error is None:
            self.error = error
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()
        self.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    def start(self, request: bytes, body: bytes = b"") -> asyncio.Future[None]:
        """Send one request (its head, then its body: two buffers, one write, no copy to join them);
        the returned future resolves when the response head is in."""
        self._reset()
        self.parser = httptools.HttpResponseParser(self)
        self._head = self.loop.create_future()
        assert self.transport is not None
        if body:
            self.transport.writelines((request, body))
        else:
            self.transport.write(request)
        return self._head

    def take(self) -> bytes:
        data = b"".join(self._buffer) if len(self._buffer) != 1 else self._buffer[0]
        self._buffer.clear()
        self._buffered = 0
        if self._paused and self.transport is not None and not self._closed:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def has_data(self) -> bool:
        return bool(self._buffer)

    def reusable(self) -> bool:
        return self.complete and not self.closed and self.error is None and self.keep_alive

    async def wait(self, seconds: float) -> None:
        """Until more body arrives, the body ends, or the connection fails (or ``seconds`` pass)."""
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(seconds, expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(ReadTimeout("read timed out"))
