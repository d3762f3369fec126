"""The group-commit writer: batching, refusals, isolation of broken operations, lock retries."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from modelgate.errors import DatabaseUnavailableError, InsufficientCreditsError
from modelgate.store import sqlite_wal
from modelgate.store.sqlite_writer import SQLiteWriter


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v INTEGER UNIQUE)")
    conn.execute("CREATE TABLE logs (v INTEGER)")
    conn.commit()
    conn.close()
    return path


def rows(path: Path, table: str = "t") -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(f"SELECT v FROM {table} ORDER BY v")]
    finally:
        conn.close()


def insert(v: int):
    def op(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (v) VALUES (?)", (v,))
        return v

    return op


async def test_one_iteration_is_one_batch_and_results_arrive_after_commit(db: Path) -> None:
    w = SQLiteWriter(db)
    w.start()
    futures = [w.submit(insert(i)) for i in range(50)]
    w.add_row("INSERT INTO logs (v) VALUES (?)", (7,))
    assert rows(db) == []  # nothing before the loop runs the batch
    assert await asyncio.gather(*futures) == list(range(50))
    assert rows(db) == list(range(50)) and rows(db, "logs") == [7]
    await w.aclose()


async def test_a_refusal_fails_alone(db: Path) -> None:
    w = SQLiteWriter(db)

    def refuse(conn: sqlite3.Connection) -> None:
        raise InsufficientCreditsError("no")

    ok1, bad, ok2 = w.submit(insert(1)), w.submit(refuse), w.submit(insert(2))
    assert await ok1 == 1 and await ok2 == 2
    with pytest.raises(InsufficientCreditsError):
        await bad
    assert rows(db) == [1, 2]
    await w.aclose()


async def test_a_broken_operation_is_isolated(db: Path) -> None:
    w = SQLiteWriter(db)

    def half_then_break(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (v) VALUES (100)")
        conn.execute("INSERT INTO t (v) VALUES (1)")  # UNIQUE violation against the op before

    first, broken, last = w.submit(insert(1)), w.submit(half_then_break), w.submit(insert(3))
    w.add_row("INSERT INTO logs (v) VALUES (?)", (9,))
    assert await first == 1 and await last == 3
    with pytest.raises(sqlite3.IntegrityError):
        await broken
    assert rows(db) == [1, 3]  # nothing of the broken op, all of the others
    assert rows(db, "logs") == [9]
    await w.aclose()


async def test_a_locked_database_is_retried_without_blocking_the_loop(db: Path) -> None:
    w = SQLiteWriter(db)
    w.start()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    fut = w.submit(insert(5))
    ticks = 0
    for _ in range(20):
        await asyncio.sleep(0.005)
        ticks += 1
    assert not fut.done() and ticks == 20  # the loop kept running
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(fut, 2) == 5
    await w.aclose()


async def test_a_checkpoint_never_holds_writes_off_while_a_reader_reads(db: Path) -> None:
    """A reader with an open snapshot (a report, a console page, a key lookup waiting for a busy
    event loop, a backup) made the WAL checkpoint's RESTART pass hold SQLite's write lock for up to
    5 s while it waited for that reader: every hold queued meanwhile got 503 on a healthy database
    (before: this hold failed after its 1 s; the writer saw the lock taken for ~5 s)."""
    w = SQLiteWriter(db, timeout=1.0)
    w.start()
    for v in range(50):
        await w.submit(insert(v))
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # a snapshot the checkpoint must wait for
    await w.submit(insert(100))  # frames after the reader's snapshot
    checkpoint = asyncio.ensure_future(asyncio.to_thread(sqlite_wal.checkpoint, str(db)))
    probe = sqlite3.connect(db, isolation_level=None, timeout=0)
    while not checkpoint.done():  # until the checkpoint has the write lock (or is over)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            break
        await asyncio.sleep(0.001)
    try:
        assert await w.submit(insert(101), deadline=w.timeout) == 101
    finally:
        reader.execute("COMMIT")
        reader.close()
        probe.close()
        await checkpoint
    # Without a reader the checkpoint still restarts the WAL: the next write starts it afresh.
    await asyncio.to_thread(sqlite_wal.checkpoint, str(db))
    await w.submit(insert(102))
    conn = sqlite3.connect(db)
    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    conn.close()
    assert frames <= 4
    await w.aclose()


async def test_a_database_locked_past_the_deadline_refuses_new_holds_at_once(db: Path) -> None:
    """Another process holds the write lock: the first hold waits its deadline, then 503; once writes
    have failed for that long, a new hold is refused at once (before: it waited the deadline again)
    and nothing of it is queued; writes go on once the lock is released."""
    w = SQLiteWriter(db, timeout=0.2)
    w.start()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseUnavailableError):
            await w.submit(insert(1), deadline=w.timeout)
        await asyncio.sleep(w.timeout)  # the lock is still held: writes have now failed that long
        assert w.failing()
        late = w.submit(insert(2), at_once=True, deadline=w.timeout)
        assert late.done()
        with pytest.raises(DatabaseUnavailableError):
            await late
    finally:
        other.execute("ROLLBACK")
        other.close()
    await w.flush()  # the first hold's write, once the lock is gone
    assert await w.submit(insert(3), at_once=True, deadline=w.timeout) == 3
    await w.flush()
    assert rows(db) == [1, 3]
    await w.aclose()


async def test_a_cancelled_waiter_hands_the_result_to_orphan(db: Path) -> None:
    w = SQLiteWriter(db)
    orphans: list[int] = []
    fut = w.submit(insert(8), orphan=orphans.append)
    fut.cancel()
    await w.flush()
    assert orphans == [8] and rows(db) == [8]
    await w.aclose()


async def test_at_once_answers_before_the_commit_which_ends_the_iteration(db: Path) -> None:
    w = SQLiteWriter(db)
    fut = w.submit(insert(4), at_once=True)
    assert fut.done() and fut.result() == 4  # the caller goes on without waiting
    assert rows(db) == []  # not committed yet: other connections do not see it
    await asyncio.sleep(0)  # one loop iteration later it is
    assert rows(db) == [4]
    await w.aclose()


async def test_at_once_only_when_idle_and_failures_stay_alone(db: Path) -> None:
    w = SQLiteWriter(db)

    def refuse(conn: sqlite3.Connection) -> None:
        raise InsufficientCreditsError("no")

    def half_then_break(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (v) VALUES (100)")
        conn.execute("INSERT INTO t (v) VALUES (1)")  # UNIQUE violation against the op before

    first = w.submit(insert(1), at_once=True)  # idle writer: applied now
    broken = w.submit(half_then_break, at_once=True)  # a batch is pending: joins it
    last = w.submit(insert(3), at_once=True)
    assert first.done() and not broken.done() and not last.done()
    with pytest.raises(sqlite3.IntegrityError):
        await broken
    assert first.result() == 1 and await last == 3
    assert rows(db) == [1, 3]  # the batch was isolated: the applied op was applied again

    refused = w.submit(refuse, at_once=True)  # idle again: refused at once, nothing written
    assert isinstance(refused.exception(), InsufficientCreditsError)
    await w.flush()
    broken_now = w.submit(half_then_break, at_once=True)
    assert isinstance(broken_now.exception(), sqlite3.IntegrityError)
    after = w.submit(insert(5), at_once=True)
    await w.flush()
    assert await after == 5
    assert rows(db) == [1, 3, 5]
    await w.aclose()


async def test_at_once_queues_behind_a_taken_lock_and_keeps_order(db: Path) -> None:
    w = SQLiteWriter(db)
    w.start()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    first = w.submit(insert(1), at_once=True)
    await asyncio.sleep(0.01)
    assert not first.done()  # queued: the lock belongs to another process
    other.execute("COMMIT")
    other.close()
    second = w.submit(insert(2), at_once=True)  # earlier work still queued: this one waits too
    assert not second.done()
    assert await asyncio.wait_for(asyncio.gather(first, second), 2) == [1, 2]
    assert rows(db) == [1, 2]
    await w.aclose()


@pytest.mark.parametrize(
    "bad",
    [10**20, {"a": 1}],  # beyond 64 bits (OverflowError); a type SQLite cannot bind (ProgrammingError)
    ids=["int-beyond-64-bits", "dict"],
)
async def test_a_row_sqlite_refuses_is_set_aside_and_the_batch_commits(db: Path, bad: object) -> None:
    """Issue 10: one bad log row once rolled its whole batch back and was retried for 30 s (or
    escaped the commit callback and hung every waiter). Now the batch is split: the operations and
    the good rows commit in the same loop iteration, the bad row alone is set aside and counted."""
    w = SQLiteWriter(db)
    w.start()
    ops = [w.submit(insert(i)) for i in range(3)]
    for v in (1, bad, 2, 3):
        w.add_row("INSERT INTO logs (v) VALUES (?)", (v,))
    _, pending = await asyncio.wait(ops, timeout=20)  # generous; the bug was a 30 s retry or a hang
    assert not pending and [f.result() for f in ops] == [0, 1, 2]
    await asyncio.wait_for(w.flush(), 20)
    assert rows(db) == [0, 1, 2] and rows(db, "logs") == [1, 2, 3]
    assert w.rows_set_aside == 1
    # The writer is healthy afterwards: the next batch is an ordinary one.
    assert await asyncio.wait_for(w.submit(insert(9)), 20) == 9
    await w.aclose()


async def test_a_duplicate_log_row_does_not_take_the_others_with_it(db: Path) -> None:
    w = SQLiteWriter(db)
    w.start()
    conn = sqlite3.connect(db)
    conn.execute("CREATE UNIQUE INDEX logs_v ON logs (v)")
    conn.commit()
    conn.close()
    for v in (5, 6, 5, 7):
        w.add_row("INSERT INTO logs (v) VALUES (?)", (v,))
    await asyncio.wait_for(w.flush(), 20)
    assert rows(db, "logs") == [5, 6, 7] and w.rows_set_aside == 1
    await w.aclose()
