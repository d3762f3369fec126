"""A TCP proxy in front of a real dependency (Redis, PostgreSQL) that a test can break and mend.

    with ChaosProxy(6379) as proxy:           # listens on 127.0.0.1:proxy.port, forwards to :6379
        url = f"redis://127.0.0.1:{proxy.port}/0"
        proxy.kill()      # refuse new connections (the port is closed) and reset the live ones
        proxy.freeze()    # accept connections and read from them, but forward nothing either way
        proxy.restore()   # forward again: frozen bytes are delivered, new connections go through

It runs on its own event loop in a daemon thread, so a blocking test (a live server in a thread)
and an async test (an app on the test's loop) can both use it. ``kill`` and ``freeze`` stand for
the two ways a dependency fails in production: a crashed server or a cut that answers RST, and a
network partition or a hung server that answers nothing at all (no RST, no FIN: only timeouts
notice it).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

from tests.fakes.threaded import BackgroundLoop

CHUNK = 65536


class _Pipe:
    """One proxied connection: the client's socket, the upstream's, and two pumps."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.client = (reader, writer)
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        """Close both sides with RST (SO_LINGER 0), as a crashed server or a cut link does."""
        for _, writer in (self.client, self.upstream) if self.upstream else (self.client,):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class ChaosProxy:
    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0  # accepted so far
        self._bg = BackgroundLoop()
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._flowing: asyncio.Event | None = None
        self._bg.run(self._start())

    # ---- control (from any thread) -----------------------------------------------------------

    def kill(self) -> None:
        """Refuse new connections (ECONNREFUSED) and reset every live one."""
        self._bg.run(self._kill())

    def freeze(self) -> None:
        """Accept new connections but forward nothing, on new and live connections alike."""
        self._bg.run(self._freeze())

    def restore(self) -> None:
        """Forward again (listening again after ``kill``; delivering held bytes after ``freeze``)."""
        self._bg.run(self._restore())

    def live(self) -> int:
        """Connections currently open through the proxy."""
        return int(self._bg.run(self._count()))

    def close(self) -> None:
        self._bg.run(self._close())
        self._bg.close()

    def __enter__(self) -> ChaosProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- on the proxy's loop -----------------------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _count(self) -> int:
        return len(self._pipes)

    async def _kill(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for pipe in list(self._pipes):
            pipe.reset()
        self._pipes.clear()

    async def _freeze(self) -> None:
        assert self._flowing is not None
        self._flowing.clear()

    async def _restore(self) -> None:
        assert self._flowing is not None
        self._flowing.set()
        if self._server is None:
            await self._listen()

    async def _close(self) -> None:
        await self._kill()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        self.connections += 1
        me = asyncio.current_task()
        if me is not None:
            self._handlers.add(me)
            me.add_done_callback(self._handlers.discard)
        pipe = _Pipe(reader, writer)
        self._pipes.add(pipe)
        try:
            await self._flowing.wait()  # frozen: the client waits for an upstream that never comes
            try:
                pipe.upstream = await asyncio.open_connection(*self.target)
            except OSError:
                pipe.reset()
                return
            up_reader, up_writer = pipe.upstream
            pipe.tasks = [
                asyncio.ensure_future(self._pump(reader, up_writer)),
                asyncio.ensure_future(self._pump(up_reader, writer)),
            ]
            await asyncio.wait(pipe.tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            self._pipes.discard(pipe)
            for task in pipe.tasks:
                task.cancel()
            for _, w in (pipe.client, pipe.upstream) if pipe.upstream else (pipe.client,):
                w.transport.abort() if w.transport.is_closing() else w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                await self._flowing.wait()  # frozen: hold the bytes until restored
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()
