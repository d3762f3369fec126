"""The group-commit writer: batching, refusals, isolation of broken operations, lock retries."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from modelgate.errors import InsufficientCreditsError
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


async def test_a_cancelled_waiter_hands_the_result_to_orphan(db: Path) -> None:
    w = SQLiteWriter(db)
    orphans: list[int] = []
    fut = w.submit(insert(8), orphan=orphans.append)
    fut.cancel()
    await w.flush()
    assert orphans == [8] and rows(db) == [8]
    await w.aclose()
