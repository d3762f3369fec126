"""Request-log rows are written in batches by a background task, off the hot path.

``record()`` only appends to a list; ``run()`` flushes every ``interval`` seconds (or when
``batch_size`` rows are waiting) in one multi-row INSERT. ``aclose()`` flushes what is left, so a
clean shutdown loses nothing; a crash can lose at most the last ``interval`` of log rows (never
money: charges are settled in the ledger transaction itself).

A batch the database refuses for its data (a value out of range, bad text, a duplicate key) is
split in halves until the bad row is alone; that row is set aside (logged, counted in ``/metrics``
through ``set_aside()``) and every other row commits. Only a failure of the database itself (the
connection lost, the server down) keeps rows for the next round, at most ``MAX_BUFFERED`` of them.

``record_body()`` queues a request's stored bodies (body logging, ``store/request_bodies.py``) the
same way: batched with the log rows, never a transaction per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, insert
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from modelgate.store.pg_writer import PGWriter
from modelgate.store.request_bodies import COLUMNS as BODY_COLUMNS
from modelgate.store.request_bodies import INSERT_SQLITE as INSERT_BODY
from modelgate.store.request_bodies import insert_bodies
from modelgate.store.schema import RequestLog
from modelgate.store.sqlite_wal import sqlite_timestamp
from modelgate.store.sqlite_writer import SQLiteWriter

# The request-log columns stored as timestamps (SQLAlchemy's DateTime text on SQLite).
_TIMESTAMP_COLUMNS = frozenset(c.name for c in RequestLog.__table__.columns if isinstance(c.type, DateTime))

log = logging.getLogger("modelgate.logsink")

MAX_BUFFERED = 100_000  # rows kept while the database is unreachable; older ones are dropped


def transient_db_error(exc: BaseException) -> bool:
    """A failure of the database or the connection (worth retrying), not of the data."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError | sa_exc.ProgrammingError):
            return False
        return _transient_orig(exc.orig)
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


def _transient_orig(orig: BaseException | None) -> bool:
    # asyncpg's own classes arrive wrapped in the adapter's generic Error: look at the SQLSTATE.
    cause = getattr(orig, "__cause__", None)
    sqlstate = str(getattr(orig, "sqlstate", "") or getattr(cause, "sqlstate", "") or "")
    if sqlstate[:2] in ("08", "53", "57", "58"):  # connection, resources, operator intervention, system
        return True
    if sqlstate:
        return False
    text = str(orig).lower()
    return "connection" in text or "closed" in text


class RequestLogSink:
    def __init__(self, engine: AsyncEngine, *, interval: float = 0.2, batch_size: int = 500) -> None:
        self._engine = engine
        self._interval = interval
        self._batch_size = batch_size
        self._rows: list[dict[str, Any]] = []
        self._bodies: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rows_set_aside = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="modelgate-logsink")

    def record(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._batch_size:
            self._wake.set()

    def record_body(self, row: dict[str, Any]) -> None:
        """Queue a request's bodies (``store/request_bodies.py``'s columns), written with the next batch."""
        self._bodies.append(row)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # keep the writer alive; the rows are retried next round
                log.exception("could not write request logs; will retry")
                await asyncio.sleep(1.0)

    async def flush(self) -> None:
        """Write every row recorded so far; raises only when the database itself is failing (the
        rows are kept for the next round)."""
        if not self._rows:
            if self._bodies:
                await self._flush_bodies()
            return
        rows, self._rows = self._rows, []
        left, error = await self._insert(rows)
        if not left and self._bodies:
            await self._flush_bodies()
        if left:
            self._rows = left + self._rows
            if len(self._rows) > MAX_BUFFERED:
                dropped = len(self._rows) - MAX_BUFFERED
                del self._rows[:dropped]
                self._set_aside(dropped, error)
            assert error is not None
            raise error

    async def _flush_bodies(self) -> None:
        bodies, self._bodies = self._bodies, []
        try:
            async with self._engine.begin() as conn:
                await insert_bodies(conn, bodies)
        except Exception as exc:
            if transient_db_error(exc) and len(self._bodies) < MAX_BUFFERED:
                self._bodies = bodies + self._bodies  # tried again next round
            else:
                log.error("%d request bodies set aside: %s", len(bodies), _short(exc))

    async def _insert(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Exception | None]:
        """Insert ``rows``, halving on a data error until the bad ones are alone (set aside).
        Returns the rows left unwritten by a transient failure, and that failure."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(RequestLog), rows)
            return [], None
        except Exception as exc:
            if transient_db_error(exc):
                return rows, exc
            if len(rows) == 1:
                self._set_aside(1, exc, rows[0])
                return [], None
        mid = len(rows) // 2
        left, error = await self._insert(rows[:mid])
        if left:
            return left + rows[mid:], error
        return await self._insert(rows[mid:])

    def _set_aside(self, count: int, exc: BaseException | None, row: dict[str, Any] | None = None) -> None:
        self.rows_set_aside += count
        which = f"request {row.get('inference_id')!r}" if row else f"{count} rows"
        log.error("request-log row set aside (%s): %s", which, _short(exc))

    def set_aside(self) -> int:
        """Rows the database refused or could not take, set aside instead of retried (/metrics)."""
        return self.rows_set_aside

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


def _short(exc: BaseException | None) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text if len(text) <= 300 else text[:300] + "…"


class WriterLogSink(RequestLogSink):
    """Request-log rows for the embedded SQLite database: handed to the process's group-commit
    writer, so they land in the same transaction as the charges queued with them."""

    def __init__(self, writer: SQLiteWriter) -> None:
        self._writer = writer
        # per set of columns: the INSERT, and the positions of the columns that may hold a datetime
        self._sql: dict[tuple[str, ...], tuple[str, tuple[int, ...]]] = {}

    @property
    def writer(self) -> SQLiteWriter:
        """The group-commit writer (stored Responses are written by it too)."""
        return self._writer

    def start(self) -> None:
        return None

    def set_aside(self) -> int:
        return self._writer.rows_set_aside

    def record(self, row: dict[str, Any]) -> None:
        cols = tuple(row)
        cached = self._sql.get(cols)
        if cached is None:
            sql = f"INSERT INTO request_logs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            stamps = tuple(i for i, c in enumerate(cols) if c in _TIMESTAMP_COLUMNS)
            cached = self._sql[cols] = (sql, stamps)
        sql, stamps = cached
        values = list(row.values())
        for i in stamps:
            if isinstance(values[i], datetime):
                values[i] = sqlite_timestamp(values[i])
        self._writer.add_row(sql, values)

    def record_body(self, row: dict[str, Any]) -> None:
        values = [row[c] for c in BODY_COLUMNS]
        values[-1] = sqlite_timestamp(values[-1])  # created_at
        self._writer.add_row(INSERT_BODY, values)

    async def flush(self) -> None:
        await self._writer.flush()

    async def aclose(self) -> None:
        await self._writer.flush()


class PGWriterLogSink(RequestLogSink):
    """Request-log rows for PostgreSQL: handed to the process's group-commit writer, so they commit
    in the same statement as the charges queued with them."""

    def __init__(self, writer: PGWriter) -> None:
        self._writer = writer

    @property
    def writer(self) -> PGWriter:
        """The ledger writer (stored Responses are written by its settle lane too)."""
        return self._writer

    def start(self) -> None:
        return None

    def set_aside(self) -> int:
        return self._writer.dropped_log_rows

    def record(self, row: dict[str, Any]) -> None:
        self._writer.add_log(row)

    def record_body(self, row: dict[str, Any]) -> None:
        self._writer.add_body(row)

    async def flush(self) -> None:
        await self._writer.flush()

    async def aclose(self) -> None:
        await self._writer.flush()
