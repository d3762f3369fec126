"""Group commit for PostgreSQL: two connections per process apply every hold, settle, release and
request-log row of that process in batches.

One request used to pay two transactions of its own on its account's row, and a row stays locked
until its commit is on disk: every request of an account queued behind the one before it (~240
req/s whatever the concurrency, and the same for a whole cluster). Here, whatever was queued while a
batch was in flight becomes the next batch, applied in one statement (``pg_batch.py``): one round
trip and one commit for the whole batch. Its guards are the same conditional updates as before,
evaluated in order under the row lock, so several instances on one account stay exact.

Two lanes, each with its own connection: holds on one, settles, releases and log rows on the other.
A request's hold then never waits behind the previous request's settle (which writes the charge and
the log row, the costlier half), and the settle statement takes the account's row lock last, just
before its commit. Order between the lanes is never needed: a settle is only submitted once its
hold has committed. Log rows travel in the batch of the settle queued with them, so a charge and its
log row commit together (nothing to reconcile after a kill -9).

Failures:
- the connection is lost: the batch may or may not have committed; it is re-applied on a new
  connection with ``p_retry`` (a hold already present is not applied twice; a settle whose hold is
  gone moves nothing), so nothing is lost or doubled. Holds waiting longer than ``GIVE_UP_AFTER``
  fail their request with 503; if their batch commits later, they are released.
- a deadlock, serialization failure or lock timeout: the batch is rolled back and re-applied.
- anything else (a value PostgreSQL refuses): the money operations are applied without the log rows,
  then the log rows in halves until the bad one is found and set aside (logged), so one bad row
  never blocks or loses anyone else's charge.

Each connection holds a shared session advisory lock on the process's owner id while it lives: that
is how other processes tell that this one is gone (``billing/owners.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from modelgate.errors import DatabaseUnavailableError
from modelgate.store.pg_batch import HOLD_OK, HoldOp, SettleOp, execute

log = logging.getLogger("modelgate.pg_writer")

GIVE_UP_AFTER = 30.0  # seconds a hold waits for an unreachable database before its request fails
MAX_BACKOFF = 1.0
MAX_QUEUED_LOG_ROWS = 200_000  # while the database is unreachable; beyond, rows are dropped (logged)
# SQLSTATEs after which the same batch is simply applied again (nothing of it was committed).
_TRANSIENT = ("40", "55P03", "57P01", "57P02", "57P03", "53")


class PGWriter:
    def __init__(self, dsn: str, *, owner: int, synchronous_commit: bool = False) -> None:
        self._dsn = dsn
        self.owner = owner
        self._synchronous_commit = synchronous_commit
        self._holds = _Lane(self)
        self._settles = _Lane(self)
        self._closed = False
        self.dropped_log_rows = 0

    async def start(self) -> None:
        await self._holds.connect()
        await self._settles.connect()

    def hold(
        self,
        *,
        inference_id: str,
        account_id: int,
        key_id: int | None,
        period: str | None,
        credits: int,
        limit: int | None,
    ) -> asyncio.Future[int]:
        """Queue a hold; resolves to HOLD_OK, HOLD_NO_CREDITS or HOLD_OVER_LIMIT once committed. If
        the future is cancelled meanwhile (its caller left), a committed hold is released."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._holds.given_up():
            fut.set_exception(_unavailable())
            return fut
        self._holds.holds.append(HoldOp(inference_id, account_id, key_id, period, credits, limit, fut))
        self._holds.kick()
        return fut

    def settle(
        self, *, inference_id: str, account_id: int, limited: bool, charge: int, model: str | None
    ) -> asyncio.Future[int]:
        """Queue a settle (a release when ``charge`` is 0); resolves to the credits charged (0 when
        the hold was already settled or released)."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._settles.settles.append(SettleOp(inference_id, account_id, limited, charge, model, fut))
        self._settles.kick()
        return fut

    def add_log(self, row: dict[str, Any]) -> None:
        if len(self._settles.logs) >= MAX_QUEUED_LOG_ROWS:
            self.dropped_log_rows += 1
            if self.dropped_log_rows % 10_000 == 1:
                log.error("database unreachable: %d request-log rows dropped so far", self.dropped_log_rows)
            return
        self._settles.logs.append(row)
        self._settles.kick()

    def release_orphan(self, op: HoldOp) -> None:
        """A hold committed after its caller left (or gave up): nobody will settle it."""
        self._settles.settles.append(
            SettleOp(op.inference_id, op.account_id, op.limit is not None, 0, None, None)
        )
        self._settles.kick()

    async def flush(self) -> None:
        """Return once everything queued before this call is committed."""
        await self._holds.flush()
        await self._settles.flush()

    async def aclose(self) -> None:
        if self._closed:
            return
        try:
            await asyncio.wait_for(self.flush(), GIVE_UP_AFTER)
        except TimeoutError:
            log.error("PostgreSQL unreachable at shutdown: queued ledger writes are lost")
        self._closed = True
        await self._holds.close()
        await self._settles.close()

    async def connect(self) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self._dsn)
        try:
            if not self._synchronous_commit:
                # The commit returns before its WAL record is flushed: the row locks of a batch are
                # held for a round trip instead of a disk flush (docs/deploy.md: the crash window).
                await conn.execute("SET synchronous_commit TO off")
            # Its few statements are the same on every call: plan them once per connection.
            await conn.execute("SET plan_cache_mode TO force_generic_plan")
            await conn.execute("SET lock_timeout TO '10s'")
            await conn.execute("SELECT pg_advisory_lock_shared($1)", self.owner)
        except BaseException:
            conn.terminate()
            raise
        return conn

    @property
    def closed(self) -> bool:
        return self._closed


class _Lane:
    """One connection and what is queued for it; whatever is queued while a batch is in flight
    becomes the next batch."""

    def __init__(self, writer: PGWriter) -> None:
        self._writer = writer
        self._conn: Any = None
        self.holds: list[HoldOp] = []
        self.settles: list[SettleOp] = []
        self.logs: list[dict[str, Any]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._failing_since: float | None = None

    def given_up(self) -> bool:
        return self._failing_since is not None and time.monotonic() - self._failing_since > GIVE_UP_AFTER

    async def flush(self) -> None:
        if self._task is None and not (self.holds or self.settles or self.logs):
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
            while self.holds or self.settles or self.logs or self._waiters:
                holds, self.holds = self.holds, []
                settles, self.settles = _one_per_hold(self.settles)
                logs, self.logs = self.logs, []
                waiters, self._waiters = self._waiters, []
                if holds or settles or logs:
                    await self._apply(holds, settles, logs)
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

    async def _apply(self, holds: list[HoldOp], settles: list[SettleOp], logs: list[dict[str, Any]]) -> None:
        retry = False
        while True:
            conn = None
            try:
                conn = await self.connect()
                settled, codes = await execute(
                    conn, owner=self._writer.owner, holds=holds, settles=settles, logs=logs, retry=retry
                )
            except Exception as exc:
                lost = conn is None or conn.is_closed() or isinstance(exc, OSError | TimeoutError)
                if not lost and not _transient(exc):
                    await self._isolate(holds, settles, logs, exc)
                    return
                retry = retry or (conn is not None)  # the statement may have committed
                await self._wait_after_failure(holds, exc)
                continue
            self._failing_since = None
            self._resolve(holds, settles, settled, codes, retry=retry)
            return

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
            if not op.fut.done():
                op.fut.set_result(code)
            elif code == HOLD_OK:  # its caller left (or gave up): nobody will settle it
                self._writer.release_orphan(op)
        for s, charged in zip(settles, settled, strict=False):
            if s.fut is not None and not s.fut.done():
                # On a retry, a hold found gone was most likely settled by the attempt that was lost.
                s.fut.set_result(s.charge if charged < 0 and retry else max(charged, 0))

    async def _isolate(
        self, holds: list[HoldOp], settles: list[SettleOp], logs: list[dict[str, Any]], exc: Exception
    ) -> None:
        """A batch PostgreSQL refused: apply the money without the log rows, then the rows in halves
        until the bad one is found; a money operation refused on its own fails alone."""
        if logs and (holds or settles):
            log.error("ledger batch refused (%r); applying its parts separately", exc)
            await self._apply(holds, settles, [])
            await self._apply([], [], logs)
        elif len(logs) > 1:
            half = len(logs) // 2
            await self._apply([], [], logs[:half])
            await self._apply([], [], logs[half:])
        elif logs:
            self._writer.dropped_log_rows += 1
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
        if now - self._failing_since > GIVE_UP_AFTER:
            # Requests stop waiting; their holds, if they commit after all, are released.
            for op in (*holds, *self.holds):
                if not op.fut.done():
                    op.fut.set_exception(_unavailable())
            self.holds = [op for op in self.holds if not op.fut.done()]
        await asyncio.sleep(min(MAX_BACKOFF, 0.01 * 2 ** min(10, int(now - self._failing_since) + 1)))


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


def _transient(exc: Exception) -> bool:
    state = getattr(exc, "sqlstate", None) or ""
    return bool(state) and state.startswith(_TRANSIENT)


def _unavailable() -> DatabaseUnavailableError:
    return DatabaseUnavailableError("The billing database is unreachable; please retry shortly.")
