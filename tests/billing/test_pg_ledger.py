"""The PostgreSQL ledger's group commit (``store/pg_writer.py``, ``store/pg_batch.py``) against a real
database: guards evaluated in order inside one batch, a lost answer never applied twice, one bad
log row never costing anyone's charge, and holds of a process that is gone released at once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

import modelgate.store.pg_lane as pg_lane_module
from modelgate.accounts.service import create_key
from modelgate.errors import SpendLimitError
from modelgate.gateway.recorder import RequestMeta, RequestRecorder
from modelgate.providers.base import Usage
from modelgate.store import pg_batch
from modelgate.store.db import Database
from modelgate.store.holds_owners import new_owner_id
from modelgate.store.keys import KeyIdentity
from modelgate.store.ledger_pg import PGLedger
from modelgate.store.pg_writer import PGWriter
from modelgate.store.schema import Account, Hold, LedgerEntry, RequestLog

pytestmark = pytest.mark.postgres


@dataclass
class Env:
    db: Database
    ledger: PGLedger
    writer: PGWriter
    account_id: int
    key_id: int

    def ident(self, *, limit: int | None = None) -> KeyIdentity:
        return KeyIdentity(
            key_id=self.key_id,
            account_id=self.account_id,
            prefix="p",
            digest="d",
            is_management=False,
            scopes=None,
            limit_retention="day" if limit is not None else None,
            limit_credits=limit,
        )

    async def balance(self) -> int:
        async with self.db.engine.connect() as conn:
            q = select(Account.balance_credits).where(Account.id == self.account_id)
            return int((await conn.execute(q)).scalar_one())

    async def count(self, table: Any, **where: Any) -> int:
        async with self.db.engine.connect() as conn:
            q = select(func.count()).select_from(table)
            for name, value in where.items():
                q = q.where(getattr(table.c, name) == value)
            return int((await conn.execute(q)).scalar_one())


async def _env(url: str, balance: int) -> tuple[Database, int, int]:
    db = Database(url)
    await db.upgrade()
    async with db.engine.begin() as conn:
        acc = (
            await conn.execute(
                insert(Account)
                .values(email=f"pg{secrets.token_hex(4)}@x", balance_credits=balance)
                .returning(Account.id)
            )
        ).scalar_one()
        key = await create_key(conn, account_id=acc)
    return db, int(acc), key.key_id


@pytest.fixture
async def env(pg_database: str) -> AsyncIterator[Any]:
    made: list[tuple[Database, PGWriter]] = []

    async def make(balance: int) -> Env:
        db, acc, key = await _env(pg_database, balance)
        writer = PGWriter(db.url.replace("+asyncpg", "", 1), owner=new_owner_id())
        await writer.start()
        made.append((db, writer))
        return Env(db, PGLedger(writer, db.engine), writer, acc, key)

    yield make
    for db, writer in made:
        await writer.aclose()
        await db.aclose()


def _ids(n: int) -> list[str]:
    tag = secrets.token_hex(4)
    return [f"{tag}-{i}" for i in range(n)]


async def test_one_batch_applies_each_guard_in_order(env: Any) -> None:
    e = await env(1000)
    ident = e.ident()
    sizes = [600, 500, 300, 100]  # submitted together: one batch, one statement
    results = await asyncio.gather(
        *(e.ledger.hold(ident=ident, inference_id=i, credits=c) for i, c in zip(_ids(4), sizes, strict=True)),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == [
        "HoldTicket",
        "InsufficientCreditsError",
        "HoldTicket",
        "HoldTicket",
    ]
    assert await e.balance() == 0
    assert await e.count(Hold.__table__, account_id=e.account_id) == 3


async def test_key_limit_in_one_batch(env: Any) -> None:
    e = await env(10_000)
    ident = e.ident(limit=250)
    results = await asyncio.gather(
        *(e.ledger.hold(ident=ident, inference_id=i, credits=100) for i in _ids(3)), return_exceptions=True
    )
    assert sum(isinstance(r, SpendLimitError) for r in results) == 1
    tickets = [r for r in results if not isinstance(r, Exception)]
    assert len(tickets) == 2
    # Settled: the spend moves from held to spent; the limit still counts it.
    for t in tickets:
        assert await e.ledger.settle(t, credits=100, description="m") == 100
    with pytest.raises(SpendLimitError):
        await e.ledger.hold(ident=ident, inference_id=_ids(1)[0], credits=100)
    assert await e.balance() == 10_000 - 200


async def test_refund_of_a_settle_serves_a_hold_of_the_same_batch(env: Any) -> None:
    """In one statement, settles come first: their refunds cover the holds of the same batch."""
    e = await env(100)
    first, second = _ids(2)
    await e.ledger.hold(ident=e.ident(), inference_id=first, credits=100)
    loop = asyncio.get_running_loop()
    settle = pg_batch.SettleOp(first, e.account_id, False, 40, "m", loop.create_future())
    hold = pg_batch.HoldOp(second, e.account_id, e.key_id, None, 60, None, loop.create_future())
    conn = await e.writer.connect()
    try:
        settled, codes, _ = await pg_batch.execute(
            conn, owner=e.writer.owner, holds=[hold], settles=[settle], logs=[], retry=False
        )
    finally:
        await conn.close()
    assert (list(settled), list(codes)) == ([40], [pg_batch.HOLD_OK])
    assert await e.balance() == 0


async def test_settling_twice_moves_money_once(env: Any) -> None:
    e = await env(1000)
    ticket = await e.ledger.hold(ident=e.ident(), inference_id=_ids(1)[0], credits=300)
    first = e.ledger.settle(ticket, credits=100, description="m")
    second = e.ledger.settle(ticket, credits=100, description="m")  # same batch: deferred, then a no-op
    release = e.ledger.release(ticket)
    assert (await first, await second) == (100, 0)
    await release
    assert await e.balance() == 900
    assert await e.count(LedgerEntry.__table__, reference_id=ticket.inference_id) == 1


async def test_a_hold_is_answered_only_after_the_settles_queued_before_it(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holds and settles travel on two connections, but a hold's caller gets its answer only once the
    settles queued before it are written: the previous request of a client connection is always
    charged before its next one goes upstream (the crash window of docs/deploy.md)."""
    e = await env(1000)
    ticket = await e.ledger.hold(ident=e.ident(), inference_id=_ids(1)[0], credits=300)
    real = pg_lane_module.execute
    settles_may_go = asyncio.Event()
    hold_applied = asyncio.Event()

    async def slow_settles(conn: Any, **kw: Any) -> Any:
        if kw["settles"] or kw["logs"]:
            await settles_may_go.wait()
        result = await real(conn, **kw)
        if kw["holds"]:
            hold_applied.set()
        return result

    monkeypatch.setattr(pg_lane_module, "execute", slow_settles)
    settled = e.ledger.settle(ticket, credits=100, description="m")
    hold = asyncio.ensure_future(e.ledger.hold(ident=e.ident(), inference_id=_ids(1)[0], credits=300))
    await hold_applied.wait()  # committed on its own connection...
    for _ in range(20):
        await asyncio.sleep(0)
    assert not hold.done() and not settled.done()  # ...but not answered before the settle
    settles_may_go.set()
    assert await settled == 100
    assert (await hold).credits == 300
    assert await e.balance() == 1000 - 100 - 300


async def test_an_answer_lost_with_the_connection_is_not_applied_twice(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch commits, then the connection dies before its answer arrives: the writer cannot
    know, so it applies the batch again on a new connection, and nothing happens twice."""
    e = await env(1000)
    real = pg_batch.execute
    lost = {"n": 0}

    async def commit_then_lose_the_answer(conn: Any, **kw: Any) -> Any:
        result = await real(conn, **kw)
        if lost["n"] < 2:
            lost["n"] += 1
            conn.terminate()
            raise ConnectionResetError("connection lost")
        return result

    monkeypatch.setattr(pg_lane_module, "execute", commit_then_lose_the_answer)
    ticket = await e.ledger.hold(ident=e.ident(), inference_id=_ids(1)[0], credits=300)
    assert await e.balance() == 700 and await e.count(Hold.__table__, account_id=e.account_id) == 1
    assert await e.ledger.settle(ticket, credits=120, description="m") == 120
    assert lost["n"] == 2
    assert await e.balance() == 880
    assert await e.count(LedgerEntry.__table__, reference_id=ticket.inference_id) == 1
    assert await e.count(Hold.__table__, account_id=e.account_id) == 0


def _log_row(inference_id: str, account_id: int, **over: Any) -> dict[str, Any]:
    row = {
        "inference_id": inference_id,
        "account_id": account_id,
        "key_id": None,
        "key_prefix": "p",
        "model": "m",
        "provider": "x",
        "status": "success",
        "http_status": 200,
        "origin": "api",
        "door": "chat",
        "stream": False,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
        "credits": 7,
        "finish_reason": "stop",
        "client_request_id": None,
        "error_message": None,
        "latency_ms": 1,
        "created_at": datetime.now(UTC),
    }
    row.update(over)
    return row


async def test_a_bad_log_row_costs_nobody_their_charge(env: Any) -> None:
    e = await env(1000)
    ticket = await e.ledger.hold(ident=e.ident(), inference_id=_ids(1)[0], credits=300)
    good, bad = _ids(2)
    e.writer.add_log(_log_row(good, e.account_id, error_message="NUL \x00 stripped"))
    e.writer.add_log(_log_row(bad, e.account_id, prompt_tokens=10**10))  # int32 column: refused
    e.writer.add_log(_log_row(ticket.inference_id, e.account_id))
    assert await e.ledger.settle(ticket, credits=7, description="m") == 7
    await e.ledger.flush()
    assert await e.balance() == 993
    assert await e.count(RequestLog.__table__, inference_id=good) == 1
    assert await e.count(RequestLog.__table__, inference_id=ticket.inference_id) == 1
    assert await e.count(RequestLog.__table__, inference_id=bad) == 0
    assert e.writer.dropped_log_rows == 1


async def test_a_hold_whose_caller_left_is_released(env: Any) -> None:
    e = await env(1000)
    for steps in range(6):
        task = asyncio.ensure_future(e.ledger.hold(ident=e.ident(), inference_id=_ids(1)[0], credits=100))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await e.ledger.drain()
    await e.writer.flush()
    assert await e.count(Hold.__table__, account_id=e.account_id) == 0
    assert await e.balance() == 1000


async def test_holds_of_a_gone_process_are_released_at_once(env: Any) -> None:
    e = await env(1000)
    other = await env(0)  # a second live process (its writer holds its owner lock)
    dead_owner = new_owner_id()  # nobody holds this lock: its process is gone
    now = datetime.now(UTC)
    rows = [
        ("dead", dead_owner, now, 100),
        ("alive", other.writer.owner, now, 200),
        ("mine", e.writer.owner, now, 300),
        ("legacy-old", None, now - timedelta(hours=2), 50),
        ("legacy-new", None, now, 25),
    ]
    ids = {name: f"{name}-{secrets.token_hex(3)}" for name, *_ in rows}
    async with e.db.engine.begin() as conn:
        for name, owner, created, credits in rows:
            await conn.execute(
                insert(Hold).values(
                    inference_id=ids[name],
                    account_id=e.account_id,
                    credits=credits,
                    owner=owner,
                    created_at=created,
                )
            )
    # (other tests' leftovers in this database count too: only this account's holds are checked)
    assert await e.ledger.release_stale(older_than=timedelta(hours=1)) >= 2
    async with e.db.engine.connect() as conn:
        left = set(
            (await conn.execute(select(Hold.inference_id).where(Hold.account_id == e.account_id))).scalars()
        )
    assert left == {ids["alive"], ids["mine"], ids["legacy-new"]}
    assert await e.balance() == 1000 + 100 + 50  # what the two released holds had taken
    await other.writer.aclose()  # that process stops: its holds go on the next sweep
    assert await e.ledger.release_stale(older_than=timedelta(hours=1)) >= 1
    assert await e.balance() == 1000 + 100 + 50 + 200


def test_log_columns_are_the_recorders() -> None:
    """The static statements cover exactly the rows the gateway records (others still work, through
    the function's dynamic insert, but slower)."""
    import importlib

    from modelgate.gateway.metered import Caller
    from modelgate.store.migrations.versions import __name__ as versions

    rows: list[dict[str, Any]] = []

    class Sink:
        def record(self, row: dict[str, Any]) -> None:
            rows.append(row)

    recorder = RequestRecorder(
        logsink=Sink(),  # type: ignore[arg-type]
        limiter=None,
        limits_for=None,
        metrics=None,
        spawn=lambda c: c,
    )
    ident = KeyIdentity(1, 1, "p", "d", False, None, None, None)
    meta = RequestMeta(Caller(ident=ident, inference_id="x", door="chat", path="/v1/chat/completions"))
    recorder.record(model="m", meta=meta, provider=None, usage=Usage(), credits=0, finish=None, stream=False)
    assert sorted(rows[0]) == pg_batch.LOG_COLUMNS
    migration = importlib.import_module(f"{versions}.0017_request_detail")
    assert migration.NEW_COLUMNS.split(", ") == pg_batch.LOG_COLUMNS


@pytest.mark.parametrize("batched", [False, True], ids=["one-statement", "apply-function"])
async def test_a_hold_requires_a_live_key_and_an_enabled_account(env: Any, batched: bool) -> None:
    """Issue 18: without Redis, another instance's cache served a revoked key for up to its TTL.
    Both hold paths (the single-hold statement and ``modelgate_ledger_apply``) now refuse a hold
    whose key is disabled or deleted, or whose account is disabled, with the 401 a fresh lookup
    gives, and leave nothing held."""
    from modelgate.store.keys import (
        ACCOUNT_DISABLED_MESSAGE,
        DISABLED_KEY_MESSAGE,
        INVALID_KEY_MESSAGE,
        KeyRevokedError,
    )
    from modelgate.store.schema import ApiKey

    e = await env(10_000)
    ident = e.ident(limit=5_000) if batched else e.ident()  # a key limit takes the apply function

    async def refused(message: str) -> None:
        holds = [e.ledger.hold(ident=ident, inference_id=i, credits=100) for i in _ids(2 if batched else 1)]
        results = await asyncio.gather(*holds, return_exceptions=True)
        for r in results:
            assert isinstance(r, KeyRevokedError) and r.status_code == 401 and r.message == message, r
            assert r.key_id == e.key_id

    async def set_(table: Any, row_id: int, **values: Any) -> None:
        async with e.db.engine.begin() as conn:
            await conn.execute(update(table).where(table.id == row_id).values(**values))

    await e.ledger.hold(ident=ident, inference_id=_ids(1)[0], credits=100)  # live: held
    await set_(ApiKey, e.key_id, disabled=True)
    await refused(DISABLED_KEY_MESSAGE)
    await set_(Account, e.account_id, disabled=True)
    await refused(ACCOUNT_DISABLED_MESSAGE)
    await set_(ApiKey, e.key_id, disabled=False, deleted_at=datetime.now(UTC))
    await refused(INVALID_KEY_MESSAGE)
    await set_(ApiKey, e.key_id, deleted_at=None)
    await set_(Account, e.account_id, disabled=False)
    await e.ledger.hold(ident=ident, inference_id=_ids(1)[0], credits=100)  # live again
    assert await e.balance() == 10_000 - 200
    assert await e.count(Hold.__table__, account_id=e.account_id) == 2
