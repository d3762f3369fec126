"""Group commit for PostgreSQL: two connections per process apply every hold, settle, release and
request-log row of that process in batches.

One request used to pay two transactions of its own on its account's row, and a row stays locked
until its commit is on disk: every request of an account queued behind the one before it (~240
req/s whatever the concurrency, and the same for a whole cluster). Here, whatever was queued while a
batch was in flight becomes the next batch, applied in one statement (``pg_batch.py``): one round
trip and one commit for the whole batch. Its guards are the same conditional updates as before,
evaluated in order under the row lock, so several instances on one account stay exact.

Two lanes, each with its own connection (``pg_lane.py``): holds on one, settles, releases and log
rows on the other. A request's hold is applied while the previous request's settle (which writes the
charge and the log row, the costlier half) is still in flight, and the settle statement takes the
account's row lock last, just before its commit. Two orders are kept between the lanes: a settle is
only submitted once its hold has committed; and a hold's answer is given only once every settle
queued before the hold was submitted is applied (``deliver``), so a client connection can never have
more than one answered request whose charge is not yet written. Log rows travel in the batch of the
settle queued with them, so a charge and its log row commit together (nothing to reconcile after a
kill -9). Stored Responses answers (``store_response``) travel in the settle lane's batches too: a
stored request's settle, log row and response commit in one statement, which its answer waits for.

Failures (``pg_lane.py``):
- the connection is lost: the batch may or may not have committed; it is re-applied on a new
  connection with ``p_retry`` (a hold already present is not applied twice; a settle whose hold is
  gone moves nothing), so nothing is lost or doubled. A hold waits at most ``timeout`` seconds
  (``MODELGATE_DATABASE_TIMEOUT``), then its request fails with 503; if its batch commits later, it
  is released. While a lane has been failing for longer than that, new holds fail at once. A frozen
  link (no answer, no error) is given up after the lock timeout plus ``timeout``: the batch is
  re-applied on a new connection. Settles and log rows are retried until they commit.
- a deadlock, serialization failure or lock timeout: the batch is rolled back and re-applied.
- anything else (a value PostgreSQL refuses): the money operations are applied without the log rows,
  then the log rows in halves until the bad one is found and set aside (logged), so one bad row
  never blocks or loses anyone else's charge.

Each connection holds a shared session advisory lock on the process's owner id while it lives: that
is how other processes tell that this one is gone (``store/holds_owners.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from modelgate.store.pg_batch import HOLD_OK, HoldOp, SettleOp, StoreOp
from modelgate.store.pg_lane import GIVE_UP_AFTER, LOCK_TIMEOUT, Lane, unavailable

log = logging.getLogger("modelgate.pg_writer")

MAX_QUEUED_LOG_ROWS = 200_000  # while the database is unreachable; beyond, rows are dropped (logged)
MAX_QUEUED_BODIES = 10_000  # stored bodies waiting (body logging); beyond, they are dropped (counted)
MAX_QUEUED_RESPONSES = 10_000  # stored Responses answers waiting; beyond, a save fails at once


class PGWriter:
    def __init__(
        self, dsn: str, *, owner: int, synchronous_commit: bool = False, timeout: float = 5.0
    ) -> None:
        self._dsn = dsn
        self.owner = owner
        self.timeout = timeout
        self._synchronous_commit = synchronous_commit
        self._queued = 0  # settle-lane submissions so far
        self._settled = 0  # of which applied
        self._holds = Lane(self)
        self._settles = Lane(self, committed=self._settled_up_to)
        self._settles.mark = lambda: self._queued
        self._parked: list[tuple[HoldOp, int]] = []  # committed holds waiting for earlier settles
        self.closed = False
        self.dropped_log_rows = 0
        # Log rows of requests admitted on a lease (the database unreachable): inference id -> who
        # journals them with their charge (store/lease_keeper.py) instead of this queue.
        self.diverted: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.dropped_bodies = 0

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
        budgets: str | None = None,
    ) -> asyncio.Future[int]:
        """Queue a hold; resolves to a ``pg_batch.HOLD_*`` code once committed. If
        the future is cancelled meanwhile (its caller left), a committed hold is released."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        if self._holds.given_up() or self._settles.given_up():
            fut.set_exception(unavailable())
            return fut
        timer = loop.call_later(self.timeout, _expire, fut)
        fut.add_done_callback(lambda _: timer.cancel())
        op = HoldOp(
            inference_id, account_id, key_id, period, credits, limit, fut, after=self._queued, budgets=budgets
        )
        self._holds.holds.append(op)
        self._holds.kick()
        return fut

    def failing(self) -> bool:
        """A lane has been failing for longer than a hold waits (``/ready`` says not ready)."""
        return self._holds.given_up() or self._settles.given_up()

    def settle(
        self, *, inference_id: str, account_id: int, limited: bool, charge: int, model: str | None
    ) -> asyncio.Future[int]:
        """Queue a settle (a release when ``charge`` is 0); resolves to the credits charged (0 when
        the hold was already settled or released)."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._settles.settles.append(SettleOp(inference_id, account_id, limited, charge, model, fut))
        self._queued += 1
        self._settles.kick()
        return fut

    def add_log(self, row: dict[str, Any]) -> None:
        if self.diverted:
            journal = self.diverted.pop(row.get("inference_id"), None)  # type: ignore[arg-type]
            if journal is not None:
                journal(row)
                return
        if len(self._settles.logs) >= MAX_QUEUED_LOG_ROWS:
            self.dropped_log_rows += 1
            if self.dropped_log_rows % 10_000 == 1:
                log.error("database unreachable: %d request-log rows dropped so far", self.dropped_log_rows)
            return
        self._settles.logs.append(row)
        self._queued += 1
        self._settles.kick()

    def store_response(
        self, response: dict[str, Any], items: list[dict[str, Any]], *, deadline: float
    ) -> asyncio.Future[None]:
        """Queue a stored Responses answer (its row and its items' rows) for the settle lane's next
        batch; resolves once committed (a ``ConflictError`` when its id is taken), or fails with 503
        after ``deadline`` seconds (the write goes on). Queued in the same loop iteration as its
        request's settle, both go in one statement."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if len(self._settles.stored) >= MAX_QUEUED_RESPONSES:
            fut.set_exception(unavailable())
            return fut
        timer = loop.call_later(deadline, _expire, fut)
        fut.add_done_callback(lambda _: timer.cancel())
        self._settles.stored.append(StoreOp(response, items, fut))
        self._settles.kick()
        return fut

    def add_body(self, row: dict[str, Any]) -> None:
        """A request's stored bodies (body logging): written by the settle lane after the batch they
        arrive with, in one statement per batch (``store/request_bodies.py``)."""
        if len(self._settles.bodies) >= MAX_QUEUED_BODIES:
            self.dropped_bodies += 1
            return
        self._settles.bodies.append(row)
        self._settles.kick()

    def deliver(self, op: HoldOp, code: int) -> None:
        """A hold's batch is applied. Its caller gets the answer once every settle and log row queued
        before the hold is applied too (``after``): a request's hold thus waits for the previous
        request's charge on the same client connection, so a crash can leave at most one answered
        request per connection uncharged (docs/deploy.md)."""
        if op.after > self._settled:
            self._parked.append((op, code))
        elif not op.fut.done():
            op.fut.set_result(code)
        elif code == HOLD_OK:  # its caller left (or gave up): nobody will settle it
            self._settles.settles.append(
                SettleOp(
                    op.inference_id,
                    op.account_id,
                    op.limit is not None or op.budgets is not None,
                    0,
                    None,
                    None,
                )
            )
            self._queued += 1
            self._settles.kick()

    def gave_up(self) -> None:
        """A lane has failed for GIVE_UP_AFTER: requests stop waiting (their holds, committed, are
        released once the settle lane runs again)."""
        for op, _ in self._parked:
            if not op.fut.done():
                op.fut.set_exception(unavailable())

    def _settled_up_to(self, mark: int) -> None:
        self._settled = max(self._settled, mark)
        ready = [(op, code) for op, code in self._parked if op.after <= self._settled]
        if ready:
            self._parked = [(op, code) for op, code in self._parked if op.after > self._settled]
            for op, code in ready:
                self.deliver(op, code)

    def row_set_aside(self) -> None:
        self.dropped_log_rows += 1

    async def flush(self) -> None:
        """Return once everything queued before this call is committed."""
        await self._holds.flush()
        await self._settles.flush()

    async def aclose(self) -> None:
        if self.closed:
            return
        try:
            await asyncio.wait_for(self.flush(), GIVE_UP_AFTER)
        except TimeoutError:
            log.error("PostgreSQL unreachable at shutdown: queued ledger writes are lost")
        self.closed = True
        await self._holds.close()
        await self._settles.close()

    async def connect(self) -> Any:
        async with asyncio.timeout(self.timeout):
            return await self._connect()

    async def _connect(self) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self._dsn, timeout=self.timeout)
        try:
            if not self._synchronous_commit:
                # The commit returns before its WAL record is flushed: the row locks of a batch are
                # held for a round trip instead of a disk flush (docs/deploy.md: the crash window).
                await conn.execute("SET synchronous_commit TO off")
            # Its few statements are the same on every call: plan them once per connection.
            await conn.execute("SET plan_cache_mode TO force_generic_plan")
            await conn.execute(f"SET lock_timeout TO '{int(LOCK_TIMEOUT)}s'")
            await conn.execute("SELECT pg_advisory_lock_shared($1)", self.owner)
        except BaseException:
            conn.terminate()
            raise
        return conn


def _expire(fut: asyncio.Future[Any]) -> None:
    """A hold (or a stored response) waited its time: its request gets 503 (a hold committed later
    is released; a response is still written)."""
    if not fut.done():
        fut.set_exception(unavailable())
