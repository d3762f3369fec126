"""The group-commit writer's SQLite connection and the housekeeping of its write-ahead log.

``connect`` opens the one connection ``store/sqlite_writer.py`` writes through: WAL journal, no busy
wait (a batch that finds the write lock taken is retried by the writer, never waited on inside the
event loop), no automatic checkpoint. ``checkpoint_loop`` runs the checkpoints instead, in a thread
on a connection of their own, so that the commit path never copies the WAL into the database.
``sqlite_timestamp`` is the text the writer's statements store for a ``DateTime`` column.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime

log = logging.getLogger("modelgate.sqlite_writer")

CHECKPOINT_EVERY = 2.0
# The longest the RESTART pass waits for the write lock or for readers, holding writers off meanwhile.
RESTART_WAIT = 0.05


def sqlite_timestamp(dt: datetime) -> str:
    """The text SQLAlchemy stores for a ``DateTime`` column on SQLite (UTC, naive)."""
    if dt.tzinfo is not None:
        dt = (dt if dt.tzinfo is UTC else dt.astimezone(UTC)).replace(tzinfo=None)
    return dt.isoformat(" ", "microseconds")  # the same text as strftime("%Y-%m-%d %H:%M:%S.%f")


def connect(path: str) -> sqlite3.Connection:
    """The writer's connection: autocommit off (it issues BEGIN IMMEDIATE itself), WAL, no waits."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=0")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA cache_size=-512")  # its working set is the tails of a few B-trees
    return conn


async def checkpoint_loop(path: str) -> None:
    """Checkpoint the WAL of the database at ``path`` every ``CHECKPOINT_EVERY`` seconds, until
    cancelled."""
    while True:
        await asyncio.sleep(CHECKPOINT_EVERY)
        try:
            await asyncio.to_thread(checkpoint, path)
        except sqlite3.Error as exc:
            log.debug("WAL checkpoint skipped: %s", exc)


def checkpoint(path: str) -> None:
    """Copy the WAL into the database, then let the next writer start the WAL from its beginning.

    A PASSIVE checkpoint alone never lets the WAL restart under steady writes (new frames always
    follow the ones it copied), so the file would grow without bound. The PASSIVE pass copies and
    syncs the bulk without blocking anybody; the RESTART pass then holds writers off (our writer
    sees the lock taken and retries 2 ms later) while it copies the last few frames — and, had it a
    busy timeout of seconds, while it waits for every reader of the WAL to finish: one reader with
    an open snapshot (a report, a console page, a backup, a key lookup waiting for a busy event
    loop) kept every write of the gateway off for up to that timeout, and the holds queued
    meanwhile got 503 on a healthy database. So the RESTART pass waits at most ``RESTART_WAIT`` for
    the writer or a reader, then gives up until the next round (the bulk is already copied)."""
    conn = sqlite3.connect(path, timeout=RESTART_WAIT)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits
        conn.execute("PRAGMA wal_checkpoint(RESTART)")
    finally:
        conn.close()
