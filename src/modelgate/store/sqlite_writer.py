"""One writer thread per process for the embedded SQLite database, with group commit.

SQLite serialises writers; many pooled connections fighting for its write lock make each other
sleep in the busy handler. Instead, every hot-path write of this process (holds, settles, releases,
request-log rows) is queued to one thread that owns one connection and commits everything queued
so far in a single transaction. An operation is a function of the connection run inside its own
SAVEPOINT, so one that raises (a refused hold) rolls back alone and the batch still commits.

The awaiting coroutine gets the operation's result only after the batch is committed (durable to
the same degree as any SQLite commit in WAL mode). Several processes on one file stay correct:
each batch is one ``BEGIN IMMEDIATE`` transaction and the file lock orders them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("modelgate.sqlite_writer")

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
MAX_BATCH = 2000
MAX_ATTEMPTS = 40  # x 50 ms


def sqlite_timestamp(dt: datetime) -> str:
    """The text SQLAlchemy stores for a ``DateTime`` column on SQLite (UTC, naive)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(slots=True)
class _Work:
    op: Op | None  # None: rows only / flush marker
    future: asyncio.Future[Any] | None
    loop: asyncio.AbstractEventLoop | None
    rows: tuple[str, Sequence[Any]] | None = None


class SQLiteWriter:
    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="modelgate-sqlite-writer", daemon=True)
        self._started = False
        self._closed = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    # ---- submitting ------------------------------------------------------------------------

    def submit(self, op: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``op``; the future resolves (on the caller's loop) once its batch committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._put(_Work(op, fut, loop))
        return fut

    def add_row(self, sql: str, params: Sequence[Any]) -> None:
        """Queue one INSERT row; rows with the same SQL in a batch go in one ``executemany``."""
        self._put(_Work(None, None, None, (sql, params)))

    async def flush(self) -> None:
        """Return once everything queued before this call is committed."""
        await self.submit(_noop)

    def _put(self, work: _Work) -> None:
        if self._closed:
            raise RuntimeError("the SQLite writer is closed")
        self.start()
        self._queue.put(work)

    async def aclose(self) -> None:
        if not self._started or self._closed:
            self._closed = True
            return
        await self.flush()
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join, 10)

    # ---- the thread --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                self._commit_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Work]) -> None:
        results: list[tuple[_Work, Any, BaseException | None]] = []
        for attempt in range(MAX_ATTEMPTS):
            results.clear()
            rows: dict[str, list[Sequence[Any]]] = {}
            try:
                conn.execute("BEGIN IMMEDIATE")
                for work in batch:
                    if work.rows is not None:
                        rows.setdefault(work.rows[0], []).append(work.rows[1])
                        continue
                    assert work.op is not None
                    conn.execute("SAVEPOINT op")
                    try:
                        value = work.op(conn)
                    except Exception as exc:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                        results.append((work, None, exc))
                    else:
                        conn.execute("RELEASE op")
                        results.append((work, value, None))
                for sql, params in rows.items():
                    conn.executemany(sql, params)
                conn.execute("COMMIT")
                break
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if attempt == MAX_ATTEMPTS - 1:
                    # Nothing of this batch was written: every waiter gets the error (a hold fails
                    # its request; an unsettled hold stays on disk and is recovered at start).
                    log.error("SQLite batch of %d operations failed for good: %s", len(batch), exc)
                    results = [(w, None, exc) for w in batch]
                    break
                log.warning("SQLite batch of %d operations failed (%s); retrying", len(batch), exc)
                threading.Event().wait(0.05)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Work, Any, BaseException | None]]] = {}
        for item in results:
            if item[0].loop is not None:
                by_loop.setdefault(item[0].loop, []).append(item)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, items)


def _resolve(items: list[tuple[_Work, Any, BaseException | None]]) -> None:
    for work, value, exc in items:
        fut = work.future
        if fut is None or fut.done():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)


def _noop(conn: sqlite3.Connection) -> None:
    return None
