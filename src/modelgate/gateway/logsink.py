"""Request-log rows are written in batches by a background task, off the hot path.

``record()`` only appends to a list; ``run()`` flushes every ``interval`` seconds (or when
``batch_size`` rows are waiting) in one multi-row INSERT. ``aclose()`` flushes what is left, so a
clean shutdown loses nothing; a crash can lose at most the last ``interval`` of log rows (never
money: charges are settled in the ledger transaction itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from modelgate.store.pg_writer import PGWriter
from modelgate.store.schema import RequestLog
from modelgate.store.sqlite_writer import SQLiteWriter, sqlite_timestamp

log = logging.getLogger("modelgate.logsink")


class RequestLogSink:
    def __init__(self, engine: AsyncEngine, *, interval: float = 0.2, batch_size: int = 500) -> None:
        self._engine = engine
        self._interval = interval
        self._batch_size = batch_size
        self._rows: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="modelgate-logsink")

    def record(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._batch_size:
            self._wake.set()

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
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(RequestLog), rows)
        except Exception:
            self._rows = rows + self._rows
            raise

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


class WriterLogSink(RequestLogSink):
    """Request-log rows for the embedded SQLite database: handed to the process's group-commit
    writer, so they land in the same transaction as the charges queued with them."""

    def __init__(self, writer: SQLiteWriter) -> None:
        self._writer = writer
        self._sql: dict[tuple[str, ...], str] = {}

    def start(self) -> None:
        return None

    def record(self, row: dict[str, Any]) -> None:
        cols = tuple(row)
        sql = self._sql.get(cols)
        if sql is None:
            sql = f"INSERT INTO request_logs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            self._sql[cols] = sql
        self._writer.add_row(
            sql, [sqlite_timestamp(v) if isinstance(v, datetime) else v for v in row.values()]
        )

    async def flush(self) -> None:
        await self._writer.flush()

    async def aclose(self) -> None:
        await self._writer.flush()


class PGWriterLogSink(RequestLogSink):
    """Request-log rows for PostgreSQL: handed to the process's group-commit writer, so they commit
    in the same statement as the charges queued with them."""

    def __init__(self, writer: PGWriter) -> None:
        self._writer = writer

    def start(self) -> None:
        return None

    def record(self, row: dict[str, Any]) -> None:
        self._writer.add_log(row)

    async def flush(self) -> None:
        await self._writer.flush()

    async def aclose(self) -> None:
        await self._writer.flush()
