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
- Flow control: a consumer that reads slower than the upstream sends pauses the socket
  (``providers.httpconn``, which also holds the protocol and the errors).
- ``gzip``/``deflate`` bodies are decoded, though none is asked for.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

from modelgate.providers.httpconn import (
    ConnectError,
    Connection,
    ConnectionClosed,
    HTTPClientError,
    ReadTimeout,
    expire,
)
from modelgate.providers.proxy import Proxy, open_tunnel

__all__ = ["ConnectError", "ConnectionClosed", "HTTPClient", "HTTPClientError", "ReadTimeout", "Response"]

_FORBIDDEN = {"host", "content-length", "connection", "transfer-encoding"}


def _line_safe(text: str) -> str:
    if "\r" in text or "\n" in text:
        raise ValueError("a line break in a request path or header")
    return text


class Response:
    """An upstream answer whose head has arrived; the body is read with ``read``, ``lines`` or
    ``chunk`` by ``chunk``."""

    __slots__ = ("_client", "_conn", "_deadline", "_decoder", "headers", "reason", "status")

    def __init__(self, client: HTTPClient, conn: Connection, deadline: float) -> None:
        self._client = client
        self._conn = conn
        self._deadline = deadline
        self.status = conn.status
        self.reason = conn.reason
        self.headers = conn.headers
        encoding = conn.headers.get("content-encoding", "").strip().lower()
        self._decoder = zlib.decompressobj(wbits=47) if encoding in ("gzip", "x-gzip", "deflate") else None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    async def chunk(self) -> bytes | None:
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
            data = await self.chunk()
            if data is None:
                break
            parts.append(data)
            size += len(data)
        body = b"".join(parts)
        return body if limit is None else body[:limit]

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in the pieces it arrives in (binary stream framings)."""
        while (data := await self.chunk()) is not None:
            yield data

    async def lines(self) -> AsyncIterator[bytes]:
        """The body line by line (each without its line ending), as the bytes arrive."""
        pending = b""
        while True:
            data = await self.chunk()
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
        proxy: Proxy | None = None,
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
        self.host_header = host_header
        self.proxy = proxy
        # Through a proxy, an http upstream is asked in absolute form; https goes through a tunnel.
        self._target = self.prefix
        if proxy is not None and self._ssl is None:
            self._target = f"http://{host_header}{self.prefix}"
            if proxy.authorization:
                headers = {**headers, "Proxy-Authorization": proxy.authorization}
        lines = [f"Host: {host_header}"]
        lines += [
            f"{_line_safe(k)}: {_line_safe(v)}" for k, v in headers.items() if k.lower() not in _FORBIDDEN
        ]
        self._head_lines = "\r\n".join(lines)
        self._defaults = {k.lower(): (k, v) for k, v in headers.items() if k.lower() not in _FORBIDDEN}
        self._host_line = lines[0]
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self._idle: list[Connection] = []
        self._closed = False

    def _request_head(self, path: str, length: int, headers: Mapping[str, str] | None) -> bytes:
        """The request line and headers of a POST of ``length`` bytes (the body is written after it
        as it is: an agent's body of hundreds of KB is not copied to join them)."""
        extra = "".join(
            f"\r\n{_line_safe(k)}: {_line_safe(v)}"
            for k, v in (headers or {}).items()
            if k.lower() not in _FORBIDDEN
        )
        base = self._head_lines
        if headers and any(k.lower() in self._defaults for k in headers):  # a per-request override
            own = {k.lower() for k in headers}
            kept = [f"{k}: {v}" for low, (k, v) in self._defaults.items() if low not in own]
            base = "\r\n".join([self._host_line, *kept])
        head = (
            f"POST {self._target}{_line_safe(path)} HTTP/1.1\r\n{base}{extra}\r\n"
            f"Content-Length: {length}\r\n\r\n"
        )
        return head.encode("latin-1")

    async def post(self, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
        """Send a POST and return once the response head is in (the body is read from it)."""
        if self._closed:
            raise ConnectionClosed("the client is closed")
        request = self._request_head(path, len(body), headers)
        deadline = time.monotonic() + self.total_timeout
        conn = await self._get(deadline)
        head = conn.start(request, body)
        try:
            await self._wait_head(conn, head, deadline)
        except BaseException:
            conn.close()
            raise
        return Response(self, conn, deadline)

    async def _wait_head(self, conn: Connection, head: asyncio.Future[None], deadline: float) -> None:
        if head.done():
            head.result()
            return
        timeout = min(self.read_timeout, deadline - time.monotonic())
        timer = conn.loop.call_later(max(timeout, 0.0), expire, head)
        try:
            await head
        finally:
            timer.cancel()

    async def _get(self, deadline: float) -> Connection:
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
                if self.proxy is None:
                    _, proto = await loop.create_connection(
                        lambda: Connection(loop),
                        self.host,
                        self.port,
                        ssl=self._ssl,
                        server_hostname=self.host if self._ssl is not None else None,
                    )
                elif self._ssl is None:  # absolute-form requests to the proxy itself
                    _, proto = await loop.create_connection(
                        lambda: Connection(loop), self.proxy.host, self.proxy.port
                    )
                else:
                    proto = Connection(loop)
                    await open_tunnel(loop, self.proxy, self.host, self.port, self._ssl, proto)
        except TimeoutError as exc:
            raise ConnectError(f"connect timed out after {timeout:g}s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"{type(exc).__name__}: {exc}") from exc
        return proto

    def _put(self, conn: Connection) -> None:
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
