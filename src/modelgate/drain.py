"""Graceful drain of a stopping ``modelgate serve`` worker (docs/deploy.md, "Draining and rolling
restarts").

On the first SIGTERM or SIGINT the worker:

1. says it is going away: ``/ready`` answers 503 ``draining`` from now on, and every response carries
   ``Connection: close`` (no request is taken on a kept-alive connection again);
2. after ``drain_notice`` seconds (0 by default: at once) stops accepting: it closes its listening
   socket and its idle kept-alive connections, so a load balancer's next connection goes to another
   instance;
3. lets the requests and streams in flight finish, for up to ``drain_timeout`` seconds;
4. then cancels those still running (each settled for what it produced and logged, like a client
   that left) and gives them ``shutdown_timeout`` seconds to settle;
5. closes the application: holds released, the log and ledger writers flushed, connections closed.

A second signal during 1-3 goes to 4 at once: nothing more is waited for but the settling. A third
skips the application's closing as well (uvicorn's force exit).

uvicorn's own server does 2-5 with one timeout and only stops at once on a second SIGINT (and then
without closing the application); ``DrainingServer`` replaces its ``handle_exit`` and ``shutdown``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("uvicorn.error")  # the server's own log, next to "Shutting down"

_POLL = 0.05  # seconds between looks at the connections, the tasks and the signals


def _gateway_app(app: Any) -> Any:
    """The application under uvicorn's wrappers (each keeps the next in ``.app``)."""
    while app is not None and not hasattr(app, "state"):
        app = getattr(app, "app", None)
    return app


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the drain of the module docstring."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        drain_timeout: float,
        shutdown_timeout: float,
        drain_notice: float = 0.0,
    ) -> None:
        super().__init__(config)
        self.drain_timeout = drain_timeout
        self.shutdown_timeout = shutdown_timeout
        self.drain_notice = drain_notice
        self.cut = False  # a second signal: stop waiting for the requests in flight

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._captured_signals.append(sig)
        if not self.should_exit:
            self.should_exit = True
            self.begin_drain()
        elif not self.cut:
            self.cut = True
        else:
            self.force_exit = True

    def begin_drain(self) -> None:
        """Readiness false and ``Connection: close`` on every response from now on (flags only: this
        runs in the signal handler; the connections are shut in ``shutdown``, on the event loop)."""
        state: Any = self.server_state
        state.modelgate_draining = True  # read by httpserver.GuardedHttpToolsProtocol
        app = _gateway_app(getattr(self.config, "loaded_app", None))
        if app is not None:
            app.state.draining = True  # /ready

    async def _wait(self, seconds: float, done: Any, *, cuttable: bool = True) -> bool:
        """Until ``done()``, ``seconds`` pass or a signal stops the wait (the second one when
        ``cuttable``, else the third); whether ``done()``."""
        deadline = time.monotonic() + seconds
        while not done():
            if (cuttable and self.cut) or self.force_exit or time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL)
        return True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.should_exit = True
        if not getattr(self.server_state, "modelgate_draining", False):
            self.begin_drain()  # a shutdown not started by a signal
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()  # idle ones closed; the others closed after their response
        if self.drain_notice > 0:
            log.info("draining: /ready says so; still accepting for %s s", self.drain_notice)
            await self._wait(self.drain_notice, lambda: False)
        for server in self.servers:
            server.close()  # no new connection
        for sock in sockets or []:
            sock.close()
        for connection in list(state.connections):
            connection.shutdown()  # idle ones closed; the others closed after their response
        log.info(
            "draining: %d request(s) in flight, waiting up to %s s for them (a second signal stops them)",
            len(state.tasks),
            self.drain_timeout,
        )
        drained = await self._wait(self.drain_timeout, lambda: not state.tasks)
        if not drained and state.tasks:
            log.warning("draining: cancelling %d request(s) still running", len(state.tasks))
            for task in list(state.tasks):
                task.cancel(msg="the server is stopping")
            await self._wait(self.shutdown_timeout, lambda: not state.tasks, cuttable=False)
        for connection in list(state.connections):  # what is left after its response or cancellation
            transport = getattr(connection, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.close()
        if not self.force_exit:
            await self.lifespan.shutdown()
        log.info("drained")
