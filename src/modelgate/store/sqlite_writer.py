"""Group commit for the embedded SQLite database, on the event loop itself.

SQLite serialises writers; pooled connections fighting for its write lock make each other sleep in
the busy handler, and a writer thread pays a thread hop and GIL hand-offs per operation. Instead,
every hot-path write of this process (holds, settles, releases, request-log rows) is queued, and
once per event-loop iteration everything queued so far runs in one ``BEGIN IMMEDIATE`` transaction
on one connection. An operation is a function of the connection; it may refuse by raising a
``GatewayError`` *before writing anything* (a hold over the balance), and the batch still commits.
Any other exception rolls the batch back and its operations are re-run one transaction each, so
only the broken one fails. A future resolves after the COMMIT.

The loop never waits on a lock: the connection's busy timeout is zero, and a batch that finds the
write lock taken (another process, or the SQLAlchemy pool's occasional admin write) is retried a
moment later. WAL checkpoints run in a thread on their own connection, not in the commit path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from modelgate.errors import GatewayError

log = logging.getLogger("modelgate.sqlite_writer")

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
RETRY_DELAY = 0.002
GIVE_UP_AFTER = 30.0  # seconds of failed attempts before waiters get the error
CHECKPOINT_EVERY = 2.0


def sqlite_timestamp(dt: datetime) -> str:
    """The text SQLAlchemy stores for a ``DateTime`` column on SQLite (UTC, naive)."""
    if dt.tzinfo is not None:
        dt = (dt if dt.tzinfo is UTC else dt.astimezone(UTC)).replace(tzinfo=None)
    return dt.isoformat(" ", "microseconds")  # the same text as strftime("%Y-%m-%d %H:%M:%S.%f")


_Queued = tuple[Op, "asyncio.Future[Any]", "Callable[[Any], None] | None"]
_Done = tuple["asyncio.Future[Any]", Any, "BaseException | None", "Callable[[Any], None] | None"]


class _OpFailed(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _resolve(results: list[_Done]) -> None:
    for fut, value, error, orphan in results:
        if fut.done():
            if fut.cancelled() and orphan is not None and error is None:
                orphan(value)
            continue
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)


class SQLiteWriter:
    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._conn: sqlite3.Connection | None = None
        self._ops: list[_Queued] = []
        self._rows: dict[str, list[Sequence[Any]]] = {}
        self._scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        self._failing_since: float | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn = conn
            with contextlib.suppress(RuntimeError):
                self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoint_loop())

    # ---- submitting ------------------------------------------------------------------------

    def submit(
        self, op: Callable[[sqlite3.Connection], T], *, orphan: Callable[[T], None] | None = None
    ) -> asyncio.Future[T]:
        """Queue ``op``; the future resolves once its batch is committed. If the future was
        cancelled meanwhile (its caller left), ``orphan`` receives the committed result instead."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._ops.append((op, fut, orphan))
        self._schedule()
        return fut

    def add_row(self, sql: str, params: Sequence[Any]) -> None:
        """Queue one INSERT row; rows with the same SQL in a batch go in one ``executemany``."""
        self._rows.setdefault(sql, []).append(params)
        self._schedule()

    async def flush(self) -> None:
        """Return once everything queued before this call is committed."""
        await self.submit(_noop)

    def _schedule(self) -> None:
        if self._closed:
            raise RuntimeError("the SQLite writer is closed")
        if self._scheduled is None:
            self.start()
            self._scheduled = asyncio.get_running_loop().call_soon(self._commit)

    # ---- committing --------------------------------------------------------------------------

    def _commit(self) -> None:
        self._scheduled = None
        conn = self._conn
        assert conn is not None
        ops, rows = self._ops, self._rows
        self._ops, self._rows = [], {}
        try:
            results = self._run_batch(conn, ops, rows)
        except _OpFailed as failed:
            # An operation broke unexpectedly, possibly half-way: nothing of the batch was kept.
            # Run each operation alone so that only the broken one fails.
            log.error("SQLite operation failed unexpectedly: %r; isolating the batch", failed.error)
            results = self._run_isolated(conn, ops, rows)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._retry_later(ops, rows, exc)
            return
        self._failing_since = None
        _resolve(results)

    @staticmethod
    def _run_batch(
        conn: sqlite3.Connection, ops: list[_Queued], rows: dict[str, list[Sequence[Any]]]
    ) -> list[_Done]:
        results: list[_Done] = []
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

    def _run_isolated(
        self, conn: sqlite3.Connection, ops: list[_Queued], rows: dict[str, list[Sequence[Any]]]
    ) -> list[_Done]:
        results: list[_Done] = []
        for item in ops:
            try:
                results.extend(self._run_batch(conn, [item], {}))
            except _OpFailed as failed:
                results.append((item[1], None, failed.error, None))
            except sqlite3.Error as exc:
                results.append((item[1], None, exc, None))
        try:
            self._run_batch(conn, [], rows)
        except sqlite3.Error as exc:
            log.error("could not write %d request-log rows: %s", sum(map(len, rows.values())), exc)
        return results

    def _retry_later(
        self,
        ops: list[_Queued],
        rows: dict[str, list[Sequence[Any]]],
        exc: sqlite3.Error,
    ) -> None:
        """Nothing of the batch was written: put it back in front and try again shortly."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._failing_since = self._failing_since or now
        if now - self._failing_since > GIVE_UP_AFTER:
            # Every waiter gets the error (a hold fails its request; an unsettled hold stays on disk
            # and is recovered at start); log rows of this batch are lost and said so.
            log.error("SQLite writes failing for %.0fs (%s); giving up on this batch", GIVE_UP_AFTER, exc)
            for _, fut, _orphan in ops:
                if not fut.done():
                    fut.set_exception(exc)
            self._failing_since = None
        else:
            if not isinstance(exc, sqlite3.OperationalError) or "locked" not in str(exc):
                log.warning("SQLite batch failed (%s); retrying", exc)
            self._ops = ops + self._ops
            for sql, params in rows.items():
                self._rows.setdefault(sql, [])[:0] = params
        if self._scheduled is None and (self._ops or self._rows):
            self._scheduled = loop.call_later(RETRY_DELAY, self._commit)

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            try:
                await asyncio.to_thread(_checkpoint, self._path)
            except sqlite3.Error as exc:
                log.debug("WAL checkpoint skipped: %s", exc)

    async def aclose(self) -> None:
        if self._conn is None or self._closed:
            self._closed = True
            return
        while self._ops or self._rows or self._scheduled is not None:
            await self.flush()
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
        self._conn.close()
        self._conn = None


def _checkpoint(path: str) -> None:
    conn = sqlite3.connect(path, timeout=5)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()


def _noop(conn: sqlite3.Connection) -> None:
    return None
