"""Group commit for the embedded SQLite database, on the event loop itself.

SQLite serialises writers; pooled connections fighting for its write lock make each other sleep in
the busy handler, and a writer thread pays a thread hop and GIL hand-offs per operation. Instead,
every hot-path write of this process (holds, settles, releases, request-log rows) is queued, and
once per event-loop iteration everything queued so far runs in one ``BEGIN IMMEDIATE`` transaction
on one connection. An operation is a function of the connection; it may refuse by raising a
``GatewayError`` *before writing anything* (a hold over the balance), and the batch still commits.
Any other exception rolls the batch back and its operations are re-run one transaction each, so
only the broken one fails. A future resolves after the COMMIT.

A value SQLite refuses (an integer beyond 64 bits, an unsupported type, a duplicate key) is a data
error, not a reason to wait: the batch is split so that every good operation and row commits, and a
bad request-log row is set aside (logged, counted in ``rows_set_aside`` for ``/metrics``), never
retried. Only ``sqlite3.OperationalError`` (a lock, a full or failing disk) is retried.

Operations submitted ``at_once`` (holds and releases) that find the writer idle run the
moment they are submitted, in a new batch transaction, and their caller has the result without
waiting: a hold's upstream call is on its way while the COMMIT happens in the next iteration.
Only a failed COMMIT (a disk error; not a lock, which is taken first) can undo an answer already
given; the batch is then re-applied in order when the database accepts writes again.

When the database cannot be written (another process holds the write lock, a full or failing disk),
batches are retried with a growing delay, and what waits is bounded: an operation submitted with a
``deadline`` (a hold) fails with ``DatabaseUnavailableError`` (503) after that many seconds, and if
it commits later after all, its ``orphan`` receives the result (a hold nobody will settle is
released); once writes have been failing for that long, new ones fail at once. Settles, releases and
log rows are retried until they commit, so the books are exact once the database is writable again;
only a closing writer gives up (after ``GIVE_UP_AFTER``).

The loop never waits on a lock: the connection's busy timeout is zero, and a batch that finds the
write lock taken (another process, or the SQLAlchemy pool's occasional admin write) is retried a
moment later. WAL checkpoints run in a thread on their own connection, not in the commit path, and
restart the WAL so that it stays small under steady load (``store/sqlite_wal.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from modelgate.errors import GatewayError
from modelgate.store import outage, sqlite_wal

log = logging.getLogger("modelgate.sqlite_writer")

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
RETRY_DELAY = 0.002
MAX_RETRY_DELAY = 0.05
GIVE_UP_AFTER = 30.0  # seconds a closing writer keeps retrying before its waiters get the error


_Queued = tuple[Op, "asyncio.Future[Any]", "Callable[[Any], None] | None"]
_Done = tuple["asyncio.Future[Any]", Any, "BaseException | None", "Callable[[Any], None] | None"]


class _OpFailed(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _resolve(results: list[_Done]) -> None:
    for fut, value, error, orphan in results:
        if fut.done():  # its caller left, or stopped waiting (a deadline): nobody has the result
            if orphan is not None and error is None:
                orphan(value)
            continue
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)


class SQLiteWriter:
    def __init__(self, path: Path | str, *, timeout: float = 5.0) -> None:
        self._path = str(path)
        self.timeout = timeout  # seconds a hold waits for a writable database (then 503)
        self._conn: sqlite3.Connection | None = None
        self._ops: list[_Queued] = []
        self._applied: Op | None = None  # the op run at once in the open transaction, if any
        self._rows: dict[str, list[Sequence[Any]]] = {}
        self._scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        self._failing_since: float | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._closed = False
        self._closing = False
        self._retries = 0  # consecutive failed attempts (the retry delay grows with them)
        self.rows_set_aside = 0

    def start(self) -> None:
        if self._conn is None:
            self._conn = sqlite_wal.connect(self._path)
            with contextlib.suppress(RuntimeError):
                self._checkpointer = asyncio.get_running_loop().create_task(
                    sqlite_wal.checkpoint_loop(self._path)
                )

    # ---- submitting ------------------------------------------------------------------------

    def submit(
        self,
        op: Callable[[sqlite3.Connection], T],
        *,
        orphan: Callable[[T], None] | None = None,
        at_once: bool = False,
        deadline: float | None = None,
    ) -> asyncio.Future[T]:
        """Queue ``op``; the future resolves once its batch is committed. If the future was
        cancelled meanwhile (its caller left), ``orphan`` receives the committed result instead.

        ``deadline``: seconds the caller waits at most; then the future fails with
        ``DatabaseUnavailableError`` (the op still runs when the database comes back, and its
        result goes to ``orphan``). While writes have been failing for longer than ``deadline``
        already, the op fails at once and is not queued.

        ``at_once``: when the writer is idle (nothing queued, no batch pending), run ``op`` right
        now in a new batch transaction and return a future that already holds its result; the
        COMMIT follows in the next loop iteration while the caller goes on (a hold on a quiet
        gateway does not wait for the disk before its upstream call starts). When the writer is
        busy, the op joins the pending batch as usual: under load, batching is what saves the most
        (one commit for many requests, and tasks resuming together)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        since = self._failing_since
        if deadline is not None and since is not None and loop.time() - since >= deadline:
            fut.set_exception(outage.unavailable())  # failing that long already: 503 now, nothing queued
            return fut
        if at_once and self._scheduled is None and self._begin():
            conn = self._conn
            assert conn is not None
            try:
                fut.set_result(op(conn))
            except GatewayError as refusal:  # refused before writing anything
                fut.set_exception(refusal)
            except Exception as exc:  # broken half-way: its transaction holds nothing else
                log.error("SQLite operation failed unexpectedly: %r", exc)
                conn.execute("ROLLBACK")
                fut.set_exception(exc)
            else:
                self._applied = op
            self._schedule()
            return fut
        self._ops.append((op, fut, orphan))
        self._schedule()
        if deadline is not None:
            timer = loop.call_later(deadline, _expire, fut)
            fut.add_done_callback(lambda _: timer.cancel())
        return fut

    def add_row(self, sql: str, params: Sequence[Any]) -> None:
        """Queue one INSERT row; rows with the same SQL in a batch go in one ``executemany``."""
        self._rows.setdefault(sql, []).append(params)
        self._schedule()

    async def flush(self) -> None:
        """Return once everything queued or applied before this call is committed."""
        await self.submit(_noop)

    def _schedule(self) -> None:
        if self._closed:
            raise RuntimeError("the SQLite writer is closed")
        if self._scheduled is None:
            self.start()
            self._scheduled = asyncio.get_running_loop().call_soon(self._commit)

    def _begin(self) -> bool:
        """Open a batch transaction on the idle writer; False when the write lock is taken or the
        writer is waiting to retry (then the caller queues instead)."""
        self.start()
        conn = self._conn
        assert conn is not None
        if self._failing_since is not None or self._closed:
            return False
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        return True

    def failing(self) -> bool:
        """Writes have been failing for longer than a hold waits (``/ready`` says not ready)."""
        since = self._failing_since
        return since is not None and asyncio.get_running_loop().time() - since > self.timeout

    @staticmethod
    def _requeue(applied: Op | None) -> list[_Queued]:
        """The at-once op queued again after its batch was undone; its caller already had its
        result, so nobody waits on this future."""
        if applied is None:
            return []
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_ignore_outcome)
        return [(applied, fut, None)]

    # ---- committing --------------------------------------------------------------------------

    def _commit(self) -> None:
        self._scheduled = None
        conn = self._conn
        assert conn is not None
        ops, rows, applied = self._ops, self._rows, self._applied
        self._ops, self._rows, self._applied = [], {}, None
        try:
            try:
                results = self._run_batch(conn, ops, rows)
            except _OpFailed as failed:
                # A queued operation broke unexpectedly, possibly half-way: nothing of the batch was
                # kept. Run each operation alone so that only the broken one fails.
                log.error("SQLite operation failed unexpectedly: %r; isolating the batch", failed.error)
                self._isolate(conn, self._requeue(applied) + ops, rows)
                return
            except Exception as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if _transient(exc):
                    self._retry_later(self._requeue(applied) + ops, rows, exc)
                    return
                # A value SQLite refuses: split the batch so that only what is bad stays out.
                log.error("SQLite batch refused (%r); isolating the bad rows", exc)
                self._isolate(conn, self._requeue(applied) + ops, rows)
                return
        except Exception as exc:  # never leave a waiter hanging, whatever happened
            log.exception("SQLite writer failed")
            _resolve([(fut, None, exc, None) for _, fut, _ in ops])
            self._set_aside(sum(map(len, rows.values())), exc)
            return
        self._recovered()
        _resolve(results)

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.warning(
                "SQLite writes succeed again after %.1fs",
                asyncio.get_running_loop().time() - self._failing_since,
            )
        self._failing_since = None
        self._retries = 0

    @staticmethod
    def _run_batch(
        conn: sqlite3.Connection, ops: list[_Queued], rows: dict[str, list[Sequence[Any]]]
    ) -> list[_Done]:
        """Run ``ops`` and ``rows`` in the open transaction (or a new one) and COMMIT."""
        results: list[_Done] = []
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
        try:
            for op, fut, orphan in ops:
                try:
                    results.append((fut, op(conn), None, orphan))
                except GatewayError as refusal:  # refused before writing anything
                    results.append((fut, None, refusal, None))
                except Exception as exc:
                    raise _OpFailed(exc) from exc
            for sql, params in rows.items():
                conn.executemany(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return results

    def _isolate(
        self, conn: sqlite3.Connection, ops: list[_Queued], rows: dict[str, list[Sequence[Any]]]
    ) -> None:
        """Each operation in its own transaction, then the rows, split until only bad ones fail.
        A transient error on the way puts whatever is left back for a later retry."""
        results: list[_Done] = []
        for i, item in enumerate(ops):
            try:
                results.extend(self._run_batch(conn, [item], {}))
            except _OpFailed as failed:
                results.append((item[1], None, failed.error, None))
            except Exception as exc:
                if _transient(exc):
                    _resolve(results)
                    self._retry_later(ops[i:], rows, exc)
                    return
                results.append((item[1], None, exc, None))
        _resolve(results)
        left: dict[str, list[Sequence[Any]]] = {}
        error: Exception | None = None
        for sql, params in rows.items():
            if error is not None:
                left[sql] = params
                continue
            remaining, error = self._write_rows(conn, sql, params)
            if remaining:
                left[sql] = remaining
        if left:
            assert error is not None
            self._retry_later([], left, error)
        else:
            self._recovered()

    def _write_rows(
        self, conn: sqlite3.Connection, sql: str, params: list[Sequence[Any]]
    ) -> tuple[list[Sequence[Any]], Exception | None]:
        """Insert ``params``, halving on a data error until the bad rows are alone (set aside).
        Returns the rows left unwritten by a transient error, and that error."""
        try:
            self._run_batch(conn, [], {sql: params})
            return [], None
        except Exception as exc:
            if _transient(exc):
                return params, exc
            if len(params) == 1:
                self._set_aside(1, exc, params[0])
                return [], None
        mid = len(params) // 2
        left, error = self._write_rows(conn, sql, params[:mid])
        if left:
            return left + params[mid:], error
        return self._write_rows(conn, sql, params[mid:])

    def _set_aside(self, count: int, exc: BaseException, row: Sequence[Any] | None = None) -> None:
        if not count:
            return
        self.rows_set_aside += count
        first = repr(row[0])[:80] if row else "?"
        log.error("request-log row set aside (first column %s): %r", first, exc)

    def _retry_later(
        self,
        ops: list[_Queued],
        rows: dict[str, list[Sequence[Any]]],
        exc: Exception,
    ) -> None:
        """Nothing of the batch was written: put it back in front and try again shortly."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._failing_since is None:
            self._failing_since = now
            if not isinstance(exc, sqlite3.OperationalError) or "locked" not in str(exc):
                log.warning("SQLite batch failed (%s); retrying until it commits", exc)
        elif self._retries == int(1.0 / MAX_RETRY_DELAY) and "locked" in str(exc):
            log.warning("SQLite database locked by another process for 1s; retrying until it commits")
        if self._closing and now - self._failing_since > GIVE_UP_AFTER:
            # A stopping writer: every waiter gets the error (an unsettled hold stays on disk and is
            # released at the next start); log rows of this batch are lost and said so.
            log.error("SQLite writes failing for %.0fs (%s); giving up on this batch", GIVE_UP_AFTER, exc)
            for _, fut, _orphan in ops:
                if not fut.done():
                    fut.set_exception(outage.unavailable())
            self._set_aside(sum(map(len, rows.values())), exc)
            self._failing_since = None
        else:
            self._ops = ops + self._ops
            for sql, params in rows.items():
                self._rows.setdefault(sql, [])[:0] = params
        if self._scheduled is None and (self._ops or self._rows):
            delay = min(MAX_RETRY_DELAY, RETRY_DELAY * 2 ** min(self._retries, 10))
            self._retries += 1
            self._scheduled = loop.call_later(delay, self._commit)

    async def aclose(self) -> None:
        if self._conn is None or self._closed:
            self._closed = True
            return
        self._closing = True
        while self._ops or self._rows or self._scheduled is not None:
            with contextlib.suppress(GatewayError):
                await self.flush()
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
        self._conn.close()
        self._conn = None


def _transient(exc: BaseException) -> bool:
    """A failure of the database rather than of the data: a lock, a full or failing disk."""
    return isinstance(exc, sqlite3.OperationalError)


def _expire(fut: asyncio.Future[Any]) -> None:
    """A caller's deadline passed: it gets 503; the op's result, if it commits, goes to its orphan."""
    if not fut.done():
        fut.set_exception(outage.unavailable())


def _ignore_outcome(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def _noop(conn: sqlite3.Connection) -> None:
    return None
