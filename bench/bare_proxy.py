"""The ceiling for the gateway's figures: a bare async pass-through proxy on the same server stack.

uvicorn (uvloop + httptools, access log off, and modelgate's own connection protocol with its corked
writes and time limits, ``modelgate.httpserver``: as ``modelgate serve`` runs it) with a raw ASGI app
that forwards every ``POST`` body unchanged to the upstream over kept-alive HTTP/1.1 connections
(``asyncio.Protocol`` + httptools) and answers with the upstream's status, content type and body,
streaming chunked answers as they come. No auth, no validation, no billing, no logging: what any
Python gateway on this stack pays at least.

    python bench/bare_proxy.py --port 9200 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import httptools

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _Upstream(asyncio.Protocol):
    """One kept-alive connection; one exchange at a time. Body parts go to ``queue`` as they come
    (``None`` ends the answer)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.head: asyncio.Future[tuple[int, bytes]] | None = None
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.ctype = b"application/json"
        self.header_name = b""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.head is not None and not self.head.done():
            self.head.set_exception(ConnectionError("upstream closed"))
        self.queue.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.ctype = value

    def on_headers_complete(self) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_result((self.parser.get_status_code(), self.ctype))

    def on_body(self, body: bytes) -> None:
        self.queue.put_nowait(body)

    def on_message_complete(self) -> None:
        self.queue.put_nowait(None)


class BareProxy:
    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.prefix = u.path.rstrip("/")
        self.idle: list[_Upstream] = []

    async def _conn(self) -> _Upstream:
        while self.idle:
            c = self.idle.pop()
            if not c.closed:
                return c
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Upstream, self.host, self.port)
        return proto

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        parts = []
        while True:
            msg = await receive()
            parts.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = b"".join(parts)
        c = await self._conn()
        assert c.transport is not None
        c.head = asyncio.get_running_loop().create_future()
        c.transport.write(
            b"POST %s%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s"
            % (self.prefix.encode(), scope["path"].encode(), self.host.encode(), len(body), body)
        )
        status, ctype = await c.head
        if not ctype.startswith(b"text/event-stream"):  # a whole answer, sent with its length
            chunks = []
            while (part := await c.queue.get()) is not None:
                chunks.append(part)
            if not c.closed:
                self.idle.append(c)
            answer = b"".join(chunks)
            headers = [(b"content-type", ctype), (b"content-length", str(len(answer)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
            return
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]})
        while (part := await c.queue.get()) is not None:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        if not c.closed:
            self.idle.append(c)
        await send({"type": "http.response.body", "body": b""})


def main() -> None:
    import uvicorn

    from modelgate.httpserver import PROTOCOL

    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9200)
    ap.add_argument("--upstream", default="http://127.0.0.1:9100")
    args = ap.parse_args()
    uvicorn.run(
        BareProxy(args.upstream),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="auto",
        http=PROTOCOL,
        ws="none",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
