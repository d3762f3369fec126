"""A lean HTTP/1.1 client for upstream calls: ``asyncio.Protocol`` + ``httptools`` (llhttp).

The gateway makes one kind of request, over and over: a POST with a JSON body to one base URL,
whose answer is a JSON document or a server-sent-event stream. A general client pays for features
this never uses (cookies, redirects, proxies, multipart, per-request timer tasks); this one keeps a
pool of keep-alive connections per base URL, writes each request with a single ``write`` and parses
the answer with llhttp's C parser as bytes arrive.

- Timeouts: ``connect`` bounds the TCP/TLS connect, ``read`` the wait for the response head and
  every gap between body reads, ``total`` the whole exchange (one timer per wait, no extra task).
- Keep-alive: a connection goes back to the pool only when its response was read to the end and
  both sides agreed to keep it; idle ones are dropped after ``idle_timeout`` seconds, and one the
  server closed while idle is noticed (its transport is closing) and never used. A POST is never
  re-sent by this client: whether to try again is the router's decision (``gateway.router``).
- Flow control: a consumer that reads slower than the upstream sends pauses the socket.
- ``gzip``/``deflate`` bodies are decoded, though none is asked for.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

_HIGH_WATER = 256 * 1024  # buffered body bytes before the socket is paused
_FORBIDDEN = {"host", "content-length", "connection", "transfer-encoding"}


def _line_safe(text: str) -> str:
    if "\r" in text or "\n" in text:
        raise ValueError("a line break in a request path or header")
    return text


class HTTPClientError(Exception):
    """Base of this module's failures."""


class ConnectError(HTTPClientError):
    """The TCP/TLS connection could not be made."""


class ConnectionClosed(HTTPClientError):
    """The server closed or reset the connection, or sent bytes that are not HTTP."""


class ReadTimeout(HTTPClientError):
    """No response head, or no more body, within the read (or total) timeout."""


class _Conn(asyncio.Protocol):
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
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

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

    def start(self, request: bytes) -> asyncio.Future[None]:
        """Send one request; the returned future resolves when the response head is in."""
        self._reset()
        self.parser = httptools.HttpResponseParser(self)
        self._head = self.loop.create_future()
        assert self.transport is not None
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
        return (
            self.complete
            and not self.closed
            and self.error is None
            and self.keep_alive
        )

    async def wait(self, seconds: float) -> None:
        """Until more body arrives, the body ends, or the connection fails (or ``seconds`` pass)."""
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(ReadTimeout("read timed out"))


class Response:
    """An upstream answer whose head has arrived; the body is read with ``read`` or ``lines``."""

    __slots__ = ("_client", "_conn", "_deadline", "_decoder", "headers", "reason", "status")

    def __init__(self, client: HTTPClient, conn: _Conn, deadline: float) -> None:
        self._client = client
        self._conn = conn
        self._deadline = deadline
        self.status = conn.status
        self.reason = conn.reason
        self.headers = conn.headers
        encoding = conn.headers.get("content-encoding", "").strip().lower()
        self._decoder = (
            zlib.decompressobj(wbits=47) if encoding in ("gzip", "x-gzip", "deflate") else None
        )

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    async def _more(self) -> bytes | None:
        """The next piece of body, or None at its end."""
        conn = self._conn
        while not conn.has_data:
            if conn.complete:
                return None
            if conn.error is not None:
                raise conn.error
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise ReadTimeout("the total timeout ran out")
            await conn.wait(min(self._client.read_timeout, remaining))
        data = conn.take()
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                raise ConnectionClosed(f"undecodable compressed body ({exc})") from exc
        return data

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (or its first ``limit`` bytes)."""
        parts: list[bytes] = []
        size = 0
        while limit is None or size < limit:
            data = await self._more()
            if data is None:
                break
            parts.append(data)
            size += len(data)
        body = b"".join(parts)
        return body if limit is None else body[:limit]

    async def lines(self) -> AsyncIterator[bytes]:
        """The body line by line (each without its line ending), as the bytes arrive."""
        pending = b""
        while True:
            data = await self._more()
            if data is None:
                break
            pending = pending + data if pending else data
            if b"\n" not in data:
                continue
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line[:-1] if line.endswith(b"\r") else line
        if pending:
            yield pending[:-1] if pending.endswith(b"\r") else pending

    def release(self) -> None:
        """Give the connection back (if its answer was read to the end), else close it."""
        conn = self._conn
        if conn.reusable():
            self._client._put(conn)
        else:
            conn.close()


class HTTPClient:
    """A keep-alive connection pool to one origin (``scheme://host:port``) sending POSTs."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        connect_timeout: float,
        read_timeout: float,
        total_timeout: float,
        idle_timeout: float = 60.0,
        max_idle: int = 256,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":  # certificates checked against the system's CAs by default
            self._ssl = ssl_context or ssl.create_default_context()
        default_port = 443 if parts.scheme == "https" else 80
        host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not self.host.startswith("["):  # IPv6 literal
            host_header = f"[{self.host}]" if self.port == default_port else f"[{self.host}]:{self.port}"
        lines = [f"Host: {host_header}"]
        lines += [
            f"{_line_safe(k)}: {_line_safe(v)}" for k, v in headers.items() if k.lower() not in _FORBIDDEN
        ]
        self._head_lines = "\r\n".join(lines)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self._idle: list[_Conn] = []
        self._closed = False

    def _request_bytes(self, path: str, body: bytes, headers: Mapping[str, str] | None) -> bytes:
        extra = "".join(
            f"\r\n{_line_safe(k)}: {_line_safe(v)}"
            for k, v in (headers or {}).items()
            if k.lower() not in _FORBIDDEN
        )
        head = (
            f"POST {self.prefix}{_line_safe(path)} HTTP/1.1\r\n{self._head_lines}{extra}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("latin-1") + body

    async def post(self, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
        """Send a POST and return once the response head is in (the body is read from it)."""
        if self._closed:
            raise ConnectionClosed("the client is closed")
        request = self._request_bytes(path, body, headers)
        deadline = time.monotonic() + self.total_timeout
        conn = await self._get(deadline)
        head = conn.start(request)
        try:
            await self._wait_head(conn, head, deadline)
        except BaseException:
            conn.close()
            raise
        return Response(self, conn, deadline)

    async def _wait_head(self, conn: _Conn, head: asyncio.Future[None], deadline: float) -> None:
        if head.done():
            head.result()
            return
        timeout = min(self.read_timeout, deadline - time.monotonic())
        timer = conn.loop.call_later(max(timeout, 0.0), _expire, head)
        try:
            await head
        finally:
            timer.cancel()

    async def _get(self, deadline: float) -> _Conn:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.closed or now - conn.idle_since > self.idle_timeout:
                conn.close()
                continue
            return conn
        loop = asyncio.get_running_loop()
        timeout = min(self.connect_timeout, deadline - now)
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                _, proto = await loop.create_connection(
                    lambda: _Conn(loop),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError as exc:
            raise ConnectError(f"connect timed out after {timeout:g}s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"{type(exc).__name__}: {exc}") from exc
        return proto

    def _put(self, conn: _Conn) -> None:
        if self._closed or len(self._idle) >= self.max_idle:
            conn.close()
            return
        conn.parser = None
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
