"""The gateway's side of a worker process: start it, talk to it, notice its death, restart it.

    gateway process                                   worker process (worker.py)
    ───────────────                                   ──────────────────────────
    call(pending, payload) ─▶ outbox ─▶ sender ─┐     command thread ─▶ engine / embedder
                                                └──▶  socket pair (ipc.py)      │ its own thread
    pending.deliver(...) ◀── call_soon_threadsafe ◀── reader ◀──────────────────┘ one message/step

One ``Supervisor`` per worker (the chat engine, the embedding model). The worker starts on first
use and loads its model once. When it dies (a native crash, SIGKILL, the OOM killer), the reader
sees the pipe close: every call in flight fails with ``WorkerCrashedError`` (502; the core then
settles or releases its hold as for any upstream failure), and a new worker starts after a backoff
(0.5 s, doubling per crash in a row up to 30 s; reset after a worker ran 60 s). Calls arriving
meanwhile wait for it, unless its start is more than ``MAX_WAIT`` seconds away (then a 503 with
Retry-After). A worker that reports a load error (no model file...) is not restarted: every call
gets that error, as before.

Sending goes through a thread, so that a worker that stopped reading can never block the event
loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import modelgate
from modelgate.errors import GatewayError, ProviderNotConfiguredError, WorkerCrashedError
from modelgate.providers.local.ipc import decode_error

log = logging.getLogger("modelgate.providers.local")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a worker that ran this long resets the backoff
MAX_WAIT = 5.0  # a call waits for a restart at most this far away; later: 503 + Retry-After
STOP_TIMEOUT = 10.0  # a stopping worker that has not exited by then is killed


class Pending(Protocol):
    """A call in flight; ``deliver`` and ``fail`` run on ``loop``."""

    loop: asyncio.AbstractEventLoop

    def deliver(self, payload: Any) -> None: ...

    def fail(self, error: GatewayError) -> None: ...


class _Incarnation:
    def __init__(
        self, proc: subprocess.Popen[bytes], conn: Connection, ready: concurrent.futures.Future[None]
    ):
        self.proc = proc
        self.conn = conn
        self.ready = ready
        self.ready_at: float | None = None
        self.outbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.pending: dict[int, Pending] = {}
        self.dead = False
        self.load_error: GatewayError | None = None


class Supervisor:
    def __init__(self, *, kind: str, options: Any, provider: str, label: str) -> None:
        self.kind = kind
        self.options = options
        self.provider = provider
        self.label = label  # "local model", "local embedding model"
        self.stats: Any = None  # the worker's last statistics snapshot
        self.restarts = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._inc: _Incarnation | None = None
        self._next: concurrent.futures.Future[None] | None = None  # the restart's ready future
        self._restart_at = 0.0
        self._crashes = 0
        self._failed: GatewayError | None = None  # a load error: permanent
        self._stopping = False

    @property
    def pid(self) -> int | None:
        inc = self._inc
        return inc.proc.pid if inc is not None and not inc.dead else None

    def ready(self) -> bool:
        """False while the worker loads or restarts after a crash, or when it cannot load."""
        with self._lock:
            if self._failed is not None or self._next is not None:
                return False
            return self._inc is None or self._inc.ready.done()

    def start(self) -> concurrent.futures.Future[None]:
        """The current worker's ready future (starting one if none runs); idempotent."""
        with self._lock:
            if self._stopping or self._failed is not None:
                return _failed(self._failed or ProviderNotConfiguredError(f"{self.label} is shut down"))
            if self._inc is not None:
                return self._inc.ready
            if self._next is not None:  # restarting after a crash
                wait = self._restart_at - time.monotonic()
                if wait > MAX_WAIT:
                    return _failed(
                        ProviderNotConfiguredError(
                            f"{self.label} is restarting after a crash; retry after {wait:.0f}s",
                            code="worker_restarting",
                            headers={"Retry-After": str(max(1, round(wait)))},
                        )
                    )
                return self._next
            self._inc = self._spawn(concurrent.futures.Future())
            return self._inc.ready

    def call(self, pending: Pending, payload: Any) -> int:
        """Send one call to the ready worker; its messages go to ``pending`` until the final one."""
        with self._lock:
            inc = self._inc
            if inc is None or inc.dead or not inc.ready.done():
                raise WorkerCrashedError(f"{self.label}: the worker process stopped", provider=self.provider)
            rid = next(self._ids)
            inc.pending[rid] = pending
        inc.outbox.put(("call", rid, payload))
        return rid

    def cancel(self, rid: int) -> None:
        """The caller went away: forget the call, and tell the worker to stop working on it."""
        with self._lock:
            inc = self._inc
            if inc is None or inc.pending.pop(rid, None) is None:
                return
        inc.outbox.put(("cancel", rid))

    def shutdown(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the worker (its calls in flight fail with "shut down"); blocking."""
        with self._lock:
            self._stopping = True
            inc, nxt = self._inc, self._next
            self._next = None
        if nxt is not None and not nxt.done():
            nxt.set_exception(ProviderNotConfiguredError(f"{self.label} is shut down"))
        if inc is None:
            return
        inc.outbox.put(("stop",))
        try:
            inc.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s worker %d did not stop within %.0f s: killed", self.label, inc.proc.pid, timeout)
            inc.proc.kill()
            inc.proc.wait()

    # -- the worker's life -----------------------------------------------------------------------

    def _spawn(self, ready: concurrent.futures.Future[None]) -> _Incarnation:
        """Start a worker process (called with the lock held)."""
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # The worker imports modelgate from where this process did (a source tree in a bench, too).
        src = str(Path(modelgate.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "modelgate.providers.local.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            theirs.close()
        inc = _Incarnation(proc, Connection(ours.detach()), ready)
        inc.outbox.put(
            ("config", self.kind, self.options, logging.getLogger("modelgate").getEffectiveLevel())
        )
        name = f"modelgate-{self.kind}-{proc.pid}"
        threading.Thread(target=self._write, args=(inc,), name=f"{name}-send", daemon=True).start()
        threading.Thread(target=self._read, args=(inc,), name=f"{name}-read", daemon=True).start()
        return inc

    def _write(self, inc: _Incarnation) -> None:
        while (msg := inc.outbox.get()) is not None:
            try:
                inc.conn.send(msg)
            except (OSError, ValueError):  # the worker is gone: the reader notices
                return

    def _read(self, inc: _Incarnation) -> None:
        try:
            while True:
                msg = inc.conn.recv()
                tag = msg[0]
                if tag == "out":
                    self._route(inc, msg[1], msg[2])
                elif tag == "ready":
                    inc.ready_at = time.monotonic()
                    inc.ready.set_result(None)
                elif tag == "load_error":
                    inc.load_error = decode_error(msg[1], provider=self.provider)
        except (EOFError, OSError):
            pass
        except Exception:  # a message this side cannot read: treat the worker as broken
            log.exception("%s: unreadable message from worker %d", self.label, inc.proc.pid)
            inc.proc.kill()
        self._died(inc)

    def _route(self, inc: _Incarnation, items: list[tuple[int, Any, bool]], stats: Any) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Pending, Any]]] = {}
        with self._lock:
            if stats is not None:
                self.stats = stats
            for rid, payload, final in items:
                pending = inc.pending.pop(rid, None) if final else inc.pending.get(rid)
                if pending is not None:
                    by_loop.setdefault(pending.loop, []).append((pending, payload))
        for loop, batch in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that caller's loop is closed: nobody listens
                loop.call_soon_threadsafe(_deliver_all, batch)

    def _died(self, inc: _Incarnation) -> None:
        inc.outbox.put(None)  # ends the sender
        inc.conn.close()
        try:
            code = inc.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # it closed the pipe but lives on: it is no worker of ours
            inc.proc.kill()
            code = inc.proc.wait()
        cause = _describe(code)
        delay = 0.0
        with self._lock:
            inc.dead = True
            self.stats = None  # statistics are per worker: the next one starts from zero
            pending, inc.pending = inc.pending, {}
            if self._inc is inc:
                self._inc = None
            stopping = self._stopping
            if inc.load_error is not None:
                self._failed = inc.load_error
            restart = not stopping and self._failed is None
            if restart:
                stable = inc.ready_at is not None and time.monotonic() - inc.ready_at >= STABLE_AFTER
                self._crashes = 1 if stable else self._crashes + 1
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._crashes - 1))
                self._restart_at = time.monotonic() + delay
                self._next = concurrent.futures.Future()
        if not inc.ready.done():
            inc.ready.set_exception(
                inc.load_error
                or ProviderNotConfiguredError(
                    f"{self.label}: the worker process died while loading ({cause})"
                )
            )
        if stopping:
            error: GatewayError = ProviderNotConfiguredError(f"{self.label} is shut down")
        else:
            error = WorkerCrashedError(
                f"{self.label}: the worker process died ({cause}) while this request was running;"
                " it is being restarted",
                provider=self.provider,
            )
            if inc.load_error is None:
                log.error(
                    "%s: worker %d died (%s) with %d request(s) in flight; restarting in %.1f s",
                    self.label, inc.proc.pid, cause, len(pending), delay,
                )  # fmt: skip
        for p in pending.values():
            with contextlib.suppress(RuntimeError):
                p.loop.call_soon_threadsafe(p.fail, error)
        if restart:
            timer = threading.Timer(delay, self._restart)
            timer.daemon = True
            timer.start()

    def _restart(self) -> None:
        with self._lock:
            nxt, self._next = self._next, None
            if nxt is None or self._stopping:
                return
            self.restarts += 1
            try:
                self._inc = self._spawn(nxt)
            except OSError as exc:  # cannot even start a process: fail the waiters, retry on next call
                nxt.set_exception(ProviderNotConfiguredError(f"{self.label}: cannot start a worker: {exc}"))


def _deliver_all(batch: list[tuple[Pending, Any]]) -> None:
    for pending, payload in batch:
        pending.deliver(payload)


def _failed(error: GatewayError) -> concurrent.futures.Future[None]:
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    future.set_exception(error)
    return future


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
