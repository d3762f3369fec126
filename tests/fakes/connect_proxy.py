"""A small authenticating HTTP egress proxy (asyncio), as companies put in front of their upstreams.

- ``CONNECT host:port``: checks ``Proxy-Authorization`` (407 with ``Proxy-Authenticate`` when it is
  missing or wrong), opens the upstream connection, answers ``200 Connection established`` and
  relays bytes both ways (TLS stays end to end: the proxy sees none of it). ``tunnels`` records
  each target.
- Absolute-form requests (``POST http://host:port/path HTTP/1.1``) for http upstreams: the same
  check on every request, then the request is rewritten to origin form without the proxy's header
  and sent on; requests on one client connection go to one upstream connection (keep-alive), and
  the answers are relayed as they come. ``forwarded`` records each ``host:port/path``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from urllib.parse import urlsplit


class ConnectProxy:
    def __init__(self, *, user: str = "gw", password: str = "proxy-secret") -> None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.expected = f"Basic {token}"
        self.url = ""  # http://user:password@127.0.0.1:port once started
        self.user, self.password = user, password
        self.tunnels: list[str] = []
        self.forwarded: list[str] = []
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.user}:{self.password}@{self.address}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> ConnectProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                if headers.get("proxy-authorization") != self.expected:
                    self.refused += 1
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="egress"\r\nContent-Length: 0\r\n'
                        b"Connection: close\r\n\r\n"
                    )
                    await writer.drain()
                    return
                if method == "CONNECT":
                    host, _, port = target.rpartition(":")
                    up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
                    self.tunnels.append(target)
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    await writer.drain()
                    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                    return
                url = urlsplit(target)
                if upstream is None:
                    up_reader, upstream = await asyncio.open_connection(url.hostname, url.port or 80)
                    self._spawn(_pipe(up_reader, writer))
                path = url.path + (f"?{url.query}" if url.query else "")
                self.forwarded.append(f"{url.hostname}:{url.port}{path}")
                kept = [line for line in lines[1:] if line and not line.lower().startswith("proxy-")]
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length)
                upstream.write(f"{method} {path} {version}\r\n".encode("latin-1"))
                upstream.write(("\r\n".join(kept) + "\r\n\r\n").encode("latin-1") + body)
                await upstream.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return
        finally:
            if upstream is not None:
                upstream.close()
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
