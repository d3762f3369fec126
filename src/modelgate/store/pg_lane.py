"""One lane of the PostgreSQL ledger writer (``pg_writer.py``): a connection, what is queued for
it, and how a batch is applied, retried after a lost connection, or split when PostgreSQL refuses a
value. The settle lane also writes stored Responses answers (``StoreOp``) in its batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import orjson

from modelgate.errors import ConflictError, DatabaseUnavailableError
from modelgate.store import outage
from modelgate.store.pg_batch import HoldOp, SettleOp, StoreOp, clean, execute
from modelgate.store.request_bodies import INSERT_PG as INSERT_BODIES

log = logging.getLogger("modelgate.pg_writer")

GIVE_UP_AFTER = 30.0  # seconds a closing writer waits for its queued writes
LOCK_TIMEOUT = 10.0  # the connections' lock_timeout: a batch may legitimately wait this long
MAX_BACKOFF = 1.0
# SQLSTATEs after which the same batch is simply applied again (nothing of it was committed).
_TRANSIENT = ("40", "55P03", "57P01", "57P02", "57P03", "53")


class Owner(Protocol):
    """What a lane needs from its writer."""

    owner: int
    closed: bool
    timeout: float  # seconds a hold waits for the database (MODELGATE_DATABASE_TIMEOUT)

    def connect(self) -> Awaitable[Any]: ...
    def deliver(self, op: HoldOp, code: int) -> None: ...
    def row_set_aside(self) -> None: ...
    def gave_up(self) -> None: ...


class Lane:
    """One connection and what is queued for it; whatever is queued while a batch is in flight
    becomes the next batch."""

    def __init__(self, writer: Owner, *, committed: Callable[[int], None] | None = None) -> None:
        self._writer = writer
        self._committed = committed  # called with the mark of each batch applied (settle lane)
        self.mark: Callable[[], int] = lambda: 0  # the writer's sequence number at a batch's start
        self._conn: Any = None
        self.holds: list[HoldOp] = []
        self.settles: list[SettleOp] = []
        self.logs: list[dict[str, Any]] = []
        self.stored: list[StoreOp] = []  # stored Responses answers (settle lane)
        self.bodies: list[dict[str, Any]] = []  # stored bodies (body logging), after the batch
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._failing_since: float | None = None

    def given_up(self) -> bool:
        """Failing for longer than a hold may wait: new holds are refused at once (503)."""
        return (
            self._failing_since is not None and time.monotonic() - self._failing_since > self._writer.timeout
        )

    async def flush(self) -> None:
        if self._task is None and not (self.holds or self.settles or self.logs or self.stored or self.bodies):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self.kick()
        await fut

    def kick(self) -> None:
        if self._writer.closed:
            raise RuntimeError("the PostgreSQL writer is closed")
        if self._task is None:
            # Started as a task, so everything submitted during this loop iteration joins the batch.
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self.holds or self.settles or self.logs or self.stored or self.bodies or self._waiters:
                mark = self.mark()
                holds, self.holds = self.holds, []
                settles, self.settles = _one_per_hold(self.settles)
                logs, self.logs = self.logs, []
                stored, self.stored = _one_per_id(self.stored) if self.stored else (self.stored, [])
                bodies, self.bodies = self.bodies, []
                waiters, self._waiters = self._waiters, []
                if holds or settles or logs or stored:
                    await self._apply(holds, settles, logs, stored)
                if self._committed is not None:
                    self._committed(mark)
                if bodies:
                    await self._write_bodies(bodies)
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        finally:
            self._task = None

    async def connect(self) -> Any:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.terminate()
            self._conn = None
        self._conn = await self._writer.connect()
        return self._conn

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _apply(
        self,
        holds: list[HoldOp],
        settles: list[SettleOp],
        logs: list[dict[str, Any]],
        stored: list[StoreOp] | None = None,
    ) -> None:
        stored = stored or []
        retry = False
        while True:
            conn = None
            try:
                conn = await self.connect()
                # A frozen link answers nothing and raises nothing: past the longest a batch may
                # wait on a lock, the connection is dropped and the batch re-applied on a new one.
                async with asyncio.timeout(LOCK_TIMEOUT + self._writer.timeout):
                    settled, codes, written = await execute(
                        conn,
                        owner=self._writer.owner,
                        holds=holds,
                        settles=settles,
                        logs=logs,
                        retry=retry,
                        stored=stored,
                    )
            except Exception as exc:
                if isinstance(exc, TimeoutError) and conn is not None:
                    conn.terminate()
                lost = conn is None or conn.is_closed() or isinstance(exc, OSError | TimeoutError)
                if not lost and not _transient(exc):
                    await self._isolate(holds, settles, logs, stored, exc)
                    return
                retry = retry or (conn is not None)  # the statement may have committed
                await self._wait_after_failure(holds, exc)
                continue
            self._failing_since = None
            self._resolve(holds, settles, settled, codes, retry=retry)
            if stored:
                _stored(stored, written, retry=retry)
            return

    async def _write_bodies(self, bodies: list[dict[str, Any]]) -> None:
        """Stored bodies, one statement for the batch. Diagnostics, not money: a lost connection puts
        them back for the next batch (after a pause); a value PostgreSQL refuses sets the batch aside
        in halves until the bad row is alone."""
        try:
            conn = await self.connect()
            async with asyncio.timeout(LOCK_TIMEOUT + self._writer.timeout):
                await conn.execute(INSERT_BODIES, orjson.dumps([clean(b) for b in bodies]).decode())
        except Exception as exc:
            if isinstance(exc, TimeoutError) and self._conn is not None:
                self._conn.terminate()
            if conn_lost(self._conn, exc) or _transient(exc):
                if not self._writer.closed:
                    self.bodies[:0] = bodies
                    await asyncio.sleep(MAX_BACKOFF)
                return
            if len(bodies) > 1:
                half = len(bodies) // 2
                await self._write_bodies(bodies[:half])
                await self._write_bodies(bodies[half:])
                return
            log.error("request body %s set aside: %r", bodies[0].get("inference_id"), exc)

    def _resolve(
        self,
        holds: list[HoldOp],
        settles: list[SettleOp],
        settled: Sequence[int],
        codes: Sequence[int],
        *,
        retry: bool,
    ) -> None:
        for op, code in zip(holds, codes, strict=False):
            self._writer.deliver(op, code)
        for s, charged in zip(settles, settled, strict=False):
            if s.fut is not None and not s.fut.done():
                # On a retry, a hold found gone was most likely settled by the attempt that was lost.
                s.fut.set_result(s.charge if charged < 0 and retry else max(charged, 0))

    async def _isolate(
        self,
        holds: list[HoldOp],
        settles: list[SettleOp],
        logs: list[dict[str, Any]],
        stored: list[StoreOp],
        exc: Exception,
    ) -> None:
        """A batch PostgreSQL refused: apply the money without the log rows and stored responses,
        then the rows in halves until the bad one is found, then the responses likewise; a money
        operation or a stored response refused on its own fails alone."""
        if stored and (holds or settles or logs):
            await self._apply(holds, settles, logs)
            await self._apply([], [], [], stored)
        elif len(stored) > 1:
            half = len(stored) // 2
            await self._apply([], [], [], stored[:half])
            await self._apply([], [], [], stored[half:])
        elif stored:
            log.error("stored response %s refused: %r", stored[0].id, exc)
            if not stored[0].fut.done():
                stored[0].fut.set_exception(exc)
        elif logs and (holds or settles):
            log.error("ledger batch refused (%r); applying its parts separately", exc)
            await self._apply(holds, settles, [])
            await self._apply([], [], logs)
        elif len(logs) > 1:
            half = len(logs) // 2
            await self._apply([], [], logs[:half])
            await self._apply([], [], logs[half:])
        elif logs:
            self._writer.row_set_aside()
            log.error("request-log row %s set aside: %r", logs[0].get("inference_id"), exc)
        elif len(holds) + len(settles) > 1:
            for h in holds:
                await self._apply([h], [], [])
            for s in settles:
                await self._apply([], [s], [])
        else:
            log.error("ledger operation refused: %r", exc)
            futs = [h.fut for h in holds] + [s.fut for s in settles if s.fut is not None]
            for fut in futs:
                if not fut.done():
                    fut.set_exception(exc)

    async def _wait_after_failure(self, holds: list[HoldOp], exc: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            log.warning("PostgreSQL ledger write failed (%r); retrying", exc)
        if now - self._failing_since > self._writer.timeout:
            # Requests stop waiting; their holds, if they commit after all, are released.
            for op in (*holds, *self.holds):
                if not op.fut.done():
                    op.fut.set_exception(unavailable())
            self.holds = [op for op in self.holds if not op.fut.done()]
            self._writer.gave_up()
        await asyncio.sleep(min(MAX_BACKOFF, 0.01 * 2 ** min(10, int(now - self._failing_since) + 1)))


def _one_per_id(stored: list[StoreOp]) -> tuple[list[StoreOp], list[StoreOp]]:
    """One stored response per id in a batch; a second one waits for the next batch, where it finds
    the id taken."""
    if len(stored) < 2:
        return stored, []
    seen: set[str] = set()
    now: list[StoreOp] = []
    later: list[StoreOp] = []
    for op in stored:
        (later if op.id in seen else now).append(op)
        seen.add(op.id)
    return now, later


def _stored(stored: list[StoreOp], written: Sequence[str], *, retry: bool) -> None:
    """Answer each stored response of an applied batch: written, or refused because its id was
    already taken (on a retry, most likely by the attempt whose answer was lost)."""
    ids = set(written)
    for op in stored:
        if op.fut.done():
            continue
        if op.id in ids or retry:
            op.fut.set_result(None)
        else:
            op.fut.set_exception(ConflictError(f"duplicate response id {op.id!r}: not stored"))


def _one_per_hold(settles: list[SettleOp]) -> tuple[list[SettleOp], list[SettleOp]]:
    """One settle per hold in a batch; a second one (a release racing a settle) waits for the next
    batch, where it finds the hold gone and moves nothing."""
    seen: set[str] = set()
    now: list[SettleOp] = []
    later: list[SettleOp] = []
    for s in settles:
        (later if s.inference_id in seen else now).append(s)
        seen.add(s.inference_id)
    return now, later


def conn_lost(conn: Any, exc: Exception) -> bool:
    return conn is None or conn.is_closed() or isinstance(exc, OSError | TimeoutError)


def _transient(exc: Exception) -> bool:
    state = getattr(exc, "sqlstate", None) or ""
    return bool(state) and state.startswith(_TRANSIENT)


def unavailable() -> DatabaseUnavailableError:
    return outage.unavailable("The billing database")
