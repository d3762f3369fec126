"""The outage journal: what an instance spent on its leases while PostgreSQL was unreachable, kept
durably on local disk and applied to the database once it answers again (docs/deploy.md "Riding out
a database outage").

One SQLite file per instance (``<folder>/journal-<n>.sqlite``, locked with ``flock`` while the
process lives, so two processes never share one and a restarted instance adopts a file whose
process is gone). Each entry is one request served on a lease: its charge (0 for a release) and its
request-log row. Appends are group-committed on a thread (``synchronous=FULL``: on disk before the
append's future resolves).

Replaying an entry is one PostgreSQL transaction (``replay_entry``), idempotent:

- a charge whose ``ledger`` row (``reference_id`` = the inference id, unique) exists is done;
- otherwise the charge is carved out of the lease's hold row (as much of it as the lease still
  holds) into a hold of the request's own, which is then settled by ``modelgate_ledger_apply`` in
  the same transaction: charge, refund, key and budget spend, and the log row, exactly as a settle
  made online. A lease already gone (its instance crashed and the lease was swept) gives 0: the
  charge is then taken from the balance as an overdraft (the stated bound, docs/deploy.md);
- a release (charge 0) only writes its log row (``ON CONFLICT DO NOTHING``).

A crash in the middle of a replay rolls back the entry's transaction; the entry is replayed again
after the restart. An entry is marked applied in the journal only after its commit; a crash between
the two is harmless (the charge is found done).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from modelgate.store.pg_batch import APPLY

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, inference_id TEXT NOT NULL,"
    " account_id INTEGER NOT NULL, key_id INTEGER, period TEXT, budgets TEXT, lease TEXT,"
    " charge INTEGER NOT NULL, model TEXT, row TEXT, applied INTEGER NOT NULL DEFAULT 0)"
)
_APPEND = (
    "INSERT INTO entries (inference_id, account_id, key_id, period, budgets, lease, charge, model, row)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class ReplayRace(Exception):
    """The request's own hold vanished between the check and the settle (a release raced with the
    replay): the entry's transaction is rolled back and applied again."""


@dataclass(slots=True, frozen=True)
class Entry:
    """A request served on a lease: its charge (0: released) and its log row (JSON), if any."""

    inference_id: str
    account_id: int
    key_id: int | None
    period: str | None
    budgets: str | None
    lease: str | None
    charge: int
    model: str | None
    row: str | None

    @staticmethod
    def dump_row(row: dict[str, Any] | None) -> str | None:
        if row is None:
            return None
        clean = {k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in row.items()}
        return orjson.dumps(clean).decode()


class Journal:
    """The instance's journal file: appends (durable, group-committed), and what is not yet applied."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path: Path | None = None
        self._fd: int | None = None
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelgate-journal")
        self._queued: list[tuple[Entry, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.unapplied = 0  # entries written and not yet applied (/metrics, the replay loop)

    def open(self) -> None:
        """Take the first journal file of the folder that no live process holds (entries a crashed
        process left in it are replayed by this one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for n in range(10_000):
            path = self.folder / f"journal-{n}.sqlite"
            fd = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self._fd, self.path = fd, path
            break
        else:  # pragma: no cover - ten thousand live processes on one folder
            raise RuntimeError(f"no free outage journal in {self.folder}")
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        self._db = db
        self.unapplied = int(db.execute("SELECT count(*) FROM entries WHERE applied = 0").fetchone()[0])

    def append(self, entry: Entry) -> asyncio.Future[None]:
        """Queue ``entry``; the future resolves once it is on disk."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((entry, fut))
        self.unapplied += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write())
        return fut

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    await loop.run_in_executor(self._thread, self._insert, [e for e, _ in batch])
                except Exception as exc:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._task = None

    def _insert(self, entries: list[Entry]) -> None:
        assert self._db is not None
        with self._transaction():
            self._db.executemany(
                _APPEND,
                [
                    (
                        e.inference_id,
                        e.account_id,
                        e.key_id,
                        e.period,
                        e.budgets,
                        e.lease,
                        e.charge,
                        e.model,
                        e.row,
                    )
                    for e in entries
                ],
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    async def flush(self) -> None:
        while self._task is not None:
            await asyncio.shield(self._task)

    async def pending(self, limit: int = 500) -> list[tuple[int, Entry]]:
        """The oldest entries not yet applied, in the order they were written."""
        await self.flush()
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._pending, limit)

    def _pending(self, limit: int) -> list[tuple[int, Entry]]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT seq, inference_id, account_id, key_id, period, budgets, lease, charge, model, row"
            " FROM entries WHERE applied = 0 ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [(int(r[0]), Entry(*r[1:])) for r in rows]

    async def applied(self, seq: int) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._applied, seq)
        self.unapplied = max(0, self.unapplied - 1)

    def _applied(self, seq: int) -> None:
        assert self._db is not None
        self._db.execute("UPDATE entries SET applied = 1 WHERE seq = ?", (seq,))

    async def aclose(self) -> None:
        await self.flush()
        self._thread.shutdown(wait=True)
        if self._db is not None:
            left = int(self._db.execute("SELECT count(*) FROM entries WHERE applied = 0").fetchone()[0])
            self._db.close()
            self._db = None
            if not left and self.path is not None:  # nothing owed: the file goes with the process
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.unlink(f"{self.path}{suffix}")
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_CHARGED = "SELECT EXISTS (SELECT 1 FROM ledger WHERE reference_id = $1)"
_OWN_HOLD = "SELECT EXISTS (SELECT 1 FROM holds WHERE inference_id = $1)"
_LEASE_LEFT = "SELECT credits FROM holds WHERE inference_id = $1 FOR UPDATE"
_CARVE = "UPDATE holds SET credits = credits - $2 WHERE inference_id = $1"
_OWN = (
    "INSERT INTO holds (inference_id, account_id, key_id, period, credits, created_at, owner, budgets)"
    " VALUES ($1, $2, $3, $4, $5, now(), $6, $7)"
)


async def replay_entry(conn: Any, entry: Entry, *, owner: int) -> bool:
    """Apply one journal entry on ``conn`` (asyncpg) in one transaction; False when it was already
    applied (nothing done)."""
    async with conn.transaction():
        if entry.charge <= 0:
            if entry.row is not None:
                await _apply(conn, owner, entry, settle=False)
            return True
        if await conn.fetchval(_CHARGED, entry.inference_id):
            return False
        if not await conn.fetchval(_OWN_HOLD, entry.inference_id):
            left = await conn.fetchval(_LEASE_LEFT, entry.lease) if entry.lease else None
            take = min(entry.charge, int(left or 0))
            if take:
                await conn.execute(_CARVE, entry.lease, take)
            await conn.execute(
                _OWN,
                entry.inference_id,
                entry.account_id,
                entry.key_id,
                entry.period,
                take,
                owner,
                entry.budgets,
            )
        settled = await _apply(conn, owner, entry, settle=True)
        if not settled or settled[0] < 0:
            raise ReplayRace(entry.inference_id)
    return True


async def _apply(conn: Any, owner: int, entry: Entry, *, settle: bool) -> Any:
    """The entry's settle (when ``settle``) and log row, through ``modelgate_ledger_apply`` (the
    function inserts a row of any set of columns); returns what was charged per settle."""
    cols = sorted(orjson.loads(entry.row)) if entry.row is not None else None
    applied = await conn.fetchrow(
        APPLY,
        owner,
        False,
        True,  # lock the account first, as a limited settle does
        [entry.inference_id] if settle else [],
        [entry.account_id] if settle else [],
        [entry.charge] if settle else [],
        [entry.model] if settle else [],
        settle and (entry.period is not None or entry.budgets is not None),
        [],
        [],
        [],
        [],
        [],
        [],
        False,
        cols,
        f"[{entry.row}]" if entry.row is not None else None,
        [],
    )
    return applied["settled"]
