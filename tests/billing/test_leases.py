"""Leases and the outage journal (``store/leases.py``, ``store/lease_keeper.py``,
``store/outage_journal.py``) against a real PostgreSQL, cut with a ``ChaosProxy``:

- the lease book's accounting (what may be drawn, how a lease is sized);
- requests admitted on a lease while the database is cut, journaled, and applied once it is back:
  charges carved from the lease, every log row written, nothing applied twice when the journal is
  replayed again;
- a crash in the middle of a replay changes nothing, and a restarted process adopts the journal;
  a lease swept meanwhile (its process gone) turns the charges into an overdraft, still exact;
- at a boundary, two instances holding leases still admit exactly as many holds as the room has.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from modelgate.accounts.service import create_key
from modelgate.errors import InsufficientCreditsError
from modelgate.store import outage_journal
from modelgate.store.db import Database
from modelgate.store.holds_owners import new_owner_id
from modelgate.store.keys import KeyIdentity
from modelgate.store.lease_keeper import LeaseKeeper
from modelgate.store.leases import LEASE_PREFIX, Lease, LeaseBook
from modelgate.store.ledger import HoldTicket
from modelgate.store.ledger_pg import PGLedger
from modelgate.store.outage_journal import Journal
from modelgate.store.pg_writer import PGWriter
from modelgate.store.schema import Account, Hold, LedgerEntry, RequestLog
from tests.fakes.chaos_proxy import ChaosProxy
from tests.outages.conftest import target_port, through_proxy

pytestmark = pytest.mark.postgres


def _ident(account_id: int, key_id: int, *, period: str | None = None) -> KeyIdentity:
    return KeyIdentity(
        key_id=key_id,
        account_id=account_id,
        prefix="p",
        digest="d",
        is_management=False,
        scopes=None,
        limit_retention=period,
        limit_credits=10**9 if period else None,
    )


def _row(inference_id: str, account_id: int, credits: int, status: int = 200) -> dict[str, Any]:
    return {
        "inference_id": inference_id,
        "account_id": account_id,
        "key_id": None,
        "key_prefix": "p",
        "model": "m",
        "provider": "x",
        "status": "success" if status == 200 else "error",
        "http_status": status,
        "origin": "api",
        "door": "chat",
        "stream": False,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
        "credits": credits,
        "finish_reason": "stop",
        "client_request_id": None,
        "error_message": None,
        "latency_ms": 1,
        "created_at": datetime.now(UTC),
    }


# ---- the book alone ---------------------------------------------------------------------------


def test_lease_book_draws_only_what_a_lease_still_holds() -> None:
    book = LeaseBook(owner=1, horizon=60, fraction=0.5)
    ident = _ident(7, 3)
    assert book.draw(ident, None, None, 10) is None  # no lease
    lease = book.leases[3] = Lease("lease:1:1", 7, 3, None, None, None, credits=100)
    assert book.draw(ident, None, None, 60) is lease
    assert book.draw(ident, None, None, 60) is None  # 40 left
    book.settled(lease, held=60, charge=25)  # the hold of 60 became a charge of 25
    assert lease.left == 75 and lease.flights == 0
    assert book.draw(ident, None, None, 75) is lease and lease.left == 0
    book.settled(lease, held=75, charge=0)  # released
    assert lease.left == 75  # what was charged stays drawn
    # A lease taken for other limits (the key's period rolled over) is not drawn on.
    assert book.draw(ident, "day:2026-01-01", None, 10) is None


def test_lease_size_follows_spend_and_is_capped_by_the_room() -> None:
    book = LeaseBook(owner=1, horizon=60, fraction=0.25)
    book.charged(3, held=50, charge=20)
    book.charged(3, held=40, charge=20)
    book._last_tick -= 2.0  # two seconds of spend: 20 credits/s
    book.tick()
    assert 19 <= book.rate[3] <= 21
    wanted = book.wanted(3)  # 60 s of spend and four of the largest holds
    assert wanted == pytest.approx(60 * book.rate[3] + 4 * 50, abs=2)
    assert book.size(3, room=10**9) == pytest.approx(1.5 * wanted, abs=2)
    assert book.size(3, room=4000) == 1000  # a quarter of the room
    assert book.size(3, room=300) == 0  # a quarter is less than two holds: no lease
    assert book.wanted(4) == 0  # a key without spend


# ---- against PostgreSQL ------------------------------------------------------------------------


@dataclass
class Instance:
    db: Database
    writer: PGWriter
    keeper: LeaseKeeper
    ledger: PGLedger
    account_id: int
    key_id: int

    async def lease(self, rate: float, largest: int = 100) -> Lease:
        """Take a lease as the keeper does for a key spending ``rate`` credits a second."""
        self.ledger.leases.book.seen(_ident(self.account_id, self.key_id))  # type: ignore[union-attr]
        self.keeper.book.rate[self.key_id] = rate
        self.keeper.book.largest[self.key_id] = largest
        self.keeper.book._last_tick = asyncio.get_running_loop().time()
        await self.keeper.round()
        return self.keeper.book.leases[self.key_id]

    async def read(self, q: Any) -> Any:
        async with self.db.engine.connect() as conn:
            return (await conn.execute(q)).scalar_one()

    async def balance(self) -> int:
        return int(await self.read(select(Account.balance_credits).where(Account.id == self.account_id)))

    async def charged(self) -> int:
        q = select(func.coalesce(func.sum(-LedgerEntry.credits), 0)).where(
            LedgerEntry.account_id == self.account_id, LedgerEntry.kind == "charge"
        )
        return int(await self.read(q))

    async def logged(self) -> int:
        q = select(func.count()).select_from(RequestLog).where(RequestLog.account_id == self.account_id)
        return int(await self.read(q))

    async def hold_credits(self, inference_id: str) -> int | None:
        async with self.db.engine.connect() as conn:
            q = select(Hold.credits).where(Hold.inference_id == inference_id)
            found = (await conn.execute(q)).scalar()
        return None if found is None else int(found)

    async def request_holds(self) -> int:
        q = (
            select(func.count())
            .select_from(Hold)
            .where(Hold.account_id == self.account_id, ~Hold.inference_id.startswith(LEASE_PREFIX))
        )
        return int(await self.read(q))


@pytest.fixture
async def instances(pg_database: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Instance] = []
    proxies: list[ChaosProxy] = []

    async def make(
        *, balance: int = 0, account: tuple[int, int] | None = None, proxied: bool = False, journal: str = "j"
    ) -> tuple[Instance, ChaosProxy | None]:
        db = Database(pg_database)
        await db.upgrade()
        if account is None:
            async with db.engine.begin() as conn:
                acc = (
                    await conn.execute(
                        insert(Account)
                        .values(email=f"lease{secrets.token_hex(4)}@x", balance_credits=balance)
                        .returning(Account.id)
                    )
                ).scalar_one()
                account = (int(acc), (await create_key(conn, account_id=acc)).key_id)
        proxy = ChaosProxy(target_port(pg_database, 5432)) if proxied else None
        if proxy is not None:
            proxies.append(proxy)
        dsn = db.url.replace("+asyncpg", "", 1)
        writer = PGWriter(through_proxy(dsn, proxy) if proxy else dsn, owner=new_owner_id(), timeout=0.5)
        await writer.start()
        book = LeaseBook(owner=writer.owner, horizon=60, fraction=0.5)
        keeper = LeaseKeeper(writer, db.engine, book, Journal(tmp_path / journal))
        await keeper.start()
        inst = Instance(db, writer, keeper, PGLedger(writer, db.engine, keeper), *account)
        made.append(inst)
        return inst, proxy

    yield make
    for proxy in proxies:
        proxy.restore()
    for inst in made:
        with_keeper = inst.keeper._task is not None
        if with_keeper:
            await inst.keeper.aclose()
        await inst.writer.aclose()
        await inst.db.aclose()
    for proxy in proxies:
        proxy.close()


async def _serve_on_leases(inst: Instance, proxy: ChaosProxy, charges: list[int]) -> list[HoldTicket]:
    """Cut the database; admit one request per charge (each holding 100) and settle it, its log row
    first, as the gateway does; a charge of 0 is a release (a failed request, logged as 502)."""
    proxy.kill()
    ident = _ident(inst.account_id, inst.key_id)
    tickets = []
    for charge in charges:
        iid = f"out-{secrets.token_hex(6)}"
        ticket = await inst.ledger.hold(ident=ident, inference_id=iid, credits=100)
        assert ticket.lease is not None
        inst.writer.add_log(_row(iid, inst.account_id, charge, 200 if charge else 502))
        if charge:
            assert await inst.ledger.settle(ticket, credits=charge, description="m") == charge
        else:
            await inst.ledger.release(ticket)
        tickets.append(ticket)
    return tickets


async def test_outage_spend_is_journaled_and_applied_once(instances: Any) -> None:
    inst, proxy = await instances(balance=1_000_000, proxied=True)
    lease = await inst.lease(rate=100.0)  # 60 s of 100/s and four holds of 100, with headroom
    assert lease.credits == pytest.approx(1.5 * (60 * 70 + 400), rel=0.05)
    assert await inst.balance() == 1_000_000 - lease.credits

    tickets = await _serve_on_leases(inst, proxy, [60, 70, 0, 80])
    assert lease.left == lease.credits - 210
    assert inst.keeper.journal.unapplied == 4
    assert await inst.charged() == 0 and await inst.logged() == 0  # nothing reached the database
    proxy.restore()
    # The first hold was on the wire when the link was cut: the writer applies it again and, its
    # request long admitted on the lease, releases it.
    await inst.writer.flush()
    assert await inst.request_holds() == 0

    await inst.keeper.replay()
    assert inst.keeper.journal.unapplied == 0
    assert await inst.charged() == 210 and await inst.logged() == 4
    assert await inst.hold_credits(lease.id) == lease.credits - 210  # carved from the lease
    assert await inst.balance() == 1_000_000 - lease.credits  # the charges were held already
    assert await inst.request_holds() == 0

    # Replayed again (a crash after the commits, before the journal marked them): nothing doubles.
    assert inst.keeper.journal.path is not None
    with sqlite3.connect(inst.keeper.journal.path) as j:
        j.execute("UPDATE entries SET applied = 0")
    inst.keeper.journal.unapplied = 4
    await inst.keeper.replay()
    assert await inst.charged() == 210 and await inst.logged() == 4
    assert await inst.hold_credits(lease.id) == lease.credits - 210

    # The keeper returns a lease that was drawn on: the balance is what was charged, exactly.
    await inst.keeper.round()
    await inst.writer.flush()
    assert await inst.hold_credits(lease.id) is None
    renewed = inst.keeper.book.leases.get(inst.key_id)  # renewed at once (the key still spends)
    renewed = renewed.credits if renewed is not None else 0
    assert await inst.balance() + renewed == 1_000_000 - 210
    assert all(t.inference_id not in inst.writer.diverted for t in tickets)


class _CrashAfterCarve:
    """A connection that dies after the carve, before the settle: the transaction is lost."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def transaction(self) -> Any:
        return self._conn.transaction()

    async def fetchval(self, *a: Any) -> Any:
        return await self._conn.fetchval(*a)

    async def execute(self, *a: Any) -> Any:
        return await self._conn.execute(*a)

    async def fetchrow(self, *a: Any) -> Any:
        raise ConnectionResetError("the instance crashed mid-replay")


async def test_crash_mid_replay_then_restart_with_the_lease_swept(instances: Any) -> None:
    inst, proxy = await instances(balance=1_000_000, proxied=True, journal="crashed")
    lease = await inst.lease(rate=100.0)
    await _serve_on_leases(inst, proxy, [60, 70])
    proxy.restore()
    await inst.writer.flush()
    assert inst.keeper.journal.path is not None

    # A replay dies after carving the first charge out of the lease: all of it is rolled back.
    conn = await inst.writer.connect()
    try:
        (_, first), *_ = await inst.keeper.journal.pending()
        with pytest.raises(ConnectionResetError):
            await outage_journal.replay_entry(_CrashAfterCarve(conn), first, owner=inst.writer.owner)
    finally:
        await conn.close()
    assert await inst.hold_credits(lease.id) == lease.credits
    assert await inst.hold_credits(first.inference_id) is None
    assert await inst.charged() == 0

    # The process dies for good: its journal stays on disk (its file lock goes with it), and its
    # lease is swept by another instance (its owner is gone) before anybody replays.
    inst.keeper._task.cancel()  # type: ignore[union-attr]
    inst.keeper._task = None
    await inst.keeper.journal.flush()
    inst.keeper.journal._thread.shutdown()
    assert inst.keeper.journal._db is not None
    inst.keeper.journal._db.close()
    assert inst.keeper.journal._fd is not None
    import os

    os.close(inst.keeper.journal._fd)
    await inst.writer.settle(
        inference_id=lease.id, account_id=inst.account_id, limited=False, charge=0, model=None
    )
    assert await inst.balance() == 1_000_000

    # A new process on the same journal folder adopts the file and applies it at start: the
    # charges, with the lease gone, are taken from the balance (an overdraft bounded by the lease).
    again, _ = await instances(account=(inst.account_id, inst.key_id), journal="crashed")
    assert again.keeper.journal.path == inst.keeper.journal.path
    assert again.keeper.journal.unapplied == 0
    assert await again.charged() == 130 and await again.logged() == 2
    assert await again.balance() == 1_000_000 - 130
    assert await again.request_holds() == 0


async def test_exactly_k_at_the_boundary_with_two_instances_holding_leases(instances: Any) -> None:
    k = 30
    a, _ = await instances(balance=k * 100 + 50, journal="a")
    b, _ = await instances(account=(a.account_id, a.key_id), journal="b")
    # Each instance leases a fifth of the room (rate x 60 s + 4 holds would want more).
    for inst in (a, b):
        lease = await inst.lease(rate=100.0)
        assert lease.credits >= 200
    assert await a.balance() < k * 100
    ident = _ident(a.account_id, a.key_id)
    results = await asyncio.gather(
        *(
            (a, b)[i % 2].ledger.hold(ident=ident, inference_id=f"k-{secrets.token_hex(6)}", credits=100)
            for i in range(k + 20)
        ),
        return_exceptions=True,
    )
    admitted = [r for r in results if isinstance(r, HoldTicket)]
    refused = [r for r in results if isinstance(r, InsufficientCreditsError)]
    assert len(admitted) == k and len(refused) == 20, results
    assert not a.keeper.book.leases and not b.keeper.book.leases  # both gave their room back
    assert await a.balance() == 50
