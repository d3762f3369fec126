"""The database side of leases (``leases.py``) for the PostgreSQL ledger: taking, renewing and
returning them in the background, admitting requests on them while the database is unreachable,
journaling what those requests cost (``outage_journal.py``) and replaying it once the database
answers again. Never on the request path in normal operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from modelgate.store.keys import KeyIdentity
from modelgate.store.leases import HEADROOM, RENEW_AFTER, Lease, LeaseBook, room_left
from modelgate.store.ledger import HoldTicket, budget_buckets, period_key
from modelgate.store.outage import is_unreachable
from modelgate.store.outage_journal import Entry, Journal, ReplayRace, replay_entry
from modelgate.store.pg_batch import HOLD_OK
from modelgate.store.pg_writer import PGWriter

log = logging.getLogger("modelgate.billing")

TICK = 2.0  # seconds between two rounds of the keeper


class LeaseKeeper:
    def __init__(self, writer: PGWriter, engine: AsyncEngine, book: LeaseBook, journal: Journal) -> None:
        self._writer = writer
        self._engine = engine
        self.book = book
        self.journal = journal
        self._by_id: dict[str, Lease] = {}
        self._rows: dict[str, dict[str, Any]] = {}  # log rows of leased requests not yet finished
        self._finished: set[str] = set()  # leased requests finished before their log row came
        self._task: asyncio.Task[None] | None = None
        self.replayed = 0  # entries applied so far (tests, /metrics)

    async def start(self) -> None:
        """Open the journal and apply what a previous process of this folder left in it (before
        the start-up sweep releases that process's leases, so its charges are carved from them)."""
        self.journal.open()
        if self.journal.unapplied:
            log.warning("outage journal %s: %d entries to apply", self.journal.path, self.journal.unapplied)
            with contextlib.suppress(Exception):
                await self.replay()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="modelgate-leases")

    # ---- requests while the database is unreachable ------------------------------------------

    def draw(self, ident: KeyIdentity, inference_id: str, credits: int) -> HoldTicket | None:
        period = period_key(ident.limit_retention) if ident.limit_credits is not None else None
        buckets = budget_buckets(ident)
        lease = self.book.draw(ident, period, buckets, credits)
        if lease is None:
            return None
        self._writer.diverted[inference_id] = self._row
        return HoldTicket(inference_id, ident.account_id, ident.key_id, period, credits, buckets, lease.id)

    def _row(self, row: dict[str, Any]) -> None:
        iid = str(row.get("inference_id"))
        if iid in self._finished:  # settled or released already: the row alone
            self._finished.discard(iid)
            self._append(iid, None, 0, None, row, account_id=int(row.get("account_id") or 0), lease=None)
        else:
            self._rows[iid] = row

    def finish(self, ticket: HoldTicket, charge: int, model: str | None) -> asyncio.Future[int]:
        """A request admitted on a lease is settled (``charge`` > 0) or released: journaled."""
        lease = self._by_id.get(ticket.lease or "")
        if lease is not None:
            self.book.settled(lease, held=ticket.credits, charge=charge)
        row = self._rows.pop(ticket.inference_id, None)
        out: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if row is None:
            self._finished.add(ticket.inference_id)
            if charge <= 0:
                out.set_result(0)
                return out
        written = self._append(
            ticket.inference_id, ticket, charge, model, row, account_id=ticket.account_id, lease=lease
        )
        written.add_done_callback(lambda f: _forward(f, out, charge))
        return out

    def _append(
        self,
        iid: str,
        ticket: HoldTicket | None,
        charge: int,
        model: str | None,
        row: dict[str, Any] | None,
        *,
        account_id: int,
        lease: Lease | None,
    ) -> asyncio.Future[None]:
        entry = Entry(
            inference_id=iid,
            account_id=account_id,
            key_id=ticket.key_id if ticket is not None else None,
            period=ticket.period if ticket is not None else None,
            budgets=ticket.budgets if ticket is not None else None,
            lease=lease.id if lease is not None else None,
            charge=max(0, charge),
            model=model,
            row=Entry.dump_row(row),
        )
        return self.journal.append(entry)

    # ---- at a refusal --------------------------------------------------------------------------

    async def give_back_for(self, account_id: int, budgets: str | None) -> bool:
        """The database refused a hold: return this instance's leases that hold room it could use
        (the room goes back, as if the leases were drawn on), so that a boundary is reached exactly
        as without leases. True when any was returned (the hold is then tried once more)."""
        leases = [lease for lease in self.book.sharing(account_id, budgets) if not lease.flights]
        if not leases:
            return False
        self.book.cool(leases)
        await asyncio.gather(*(self._give_back(lease) for lease in leases), return_exceptions=True)
        return True

    # ---- the keeper ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database unreachable mid-round: the next round retries
                log.debug("lease keeper round failed: %r", exc)

    async def round(self) -> None:
        """Replay the journal if anything is owed, then size each key's lease to its spend."""
        self.book.tick()
        if self._writer.failing():
            return
        if self.journal.unapplied:
            await self.replay()
            if self.journal.unapplied:
                return
        now = time.monotonic()
        for key_id in set(self.book.rate) | set(self.book.leases):
            lease = self.book.leases.get(key_id)
            if lease is not None and lease.flights:
                continue  # requests admitted on it still run: kept until they are journaled
            want = self.book.wanted(key_id)
            if lease is not None and not want:
                await self._give_back(lease)  # the key went quiet
                continue
            ident = self.book.idents.get(key_id)
            stale = lease is not None and (
                lease.drawn
                or now - lease.taken_at > RENEW_AFTER
                or not lease.wanted / 3 <= want <= lease.wanted * HEADROOM
            )
            if (lease is None or stale) and want and ident is not None and self.book.cooled(key_id, now):
                # The new lease is taken before the old one goes back: never a moment without one.
                taken = await self._take(ident)
                if lease is not None and (taken or lease.drawn):
                    await self._give_back(lease, replaced=taken)

    async def _take(self, ident: KeyIdentity) -> bool:
        period = period_key(ident.limit_retention) if ident.limit_credits is not None else None
        buckets = budget_buckets(ident)
        room = await room_left(
            self._engine,
            account_id=ident.account_id,
            key_id=ident.key_id,
            period=period,
            limit=ident.limit_credits,
            budgets=buckets,
        )
        credits = self.book.size(ident.key_id, room)
        if credits <= 0:
            return False
        lease = Lease(
            self.book.new_id(), ident.account_id, ident.key_id, period, buckets, ident.limit_credits, credits
        )
        lease.wanted = self.book.wanted(ident.key_id)
        code = await self._writer.hold(
            inference_id=lease.id,
            account_id=lease.account_id,
            key_id=lease.key_id,
            period=period,
            credits=credits,
            limit=ident.limit_credits,
            budgets=buckets,
        )
        if code != HOLD_OK:
            return False
        self.book.leases[lease.key_id] = lease
        self._by_id[lease.id] = lease
        return True

    async def _give_back(self, lease: Lease, *, replaced: bool = False) -> None:
        if not replaced and self.book.leases.get(lease.key_id) is lease:
            del self.book.leases[lease.key_id]
        self._by_id.pop(lease.id, None)
        returned = self._writer.settle(
            inference_id=lease.id, account_id=lease.account_id, limited=lease.limited, charge=0, model=None
        )
        # Queued: it commits when the database takes it, whether or not this round waits that long.
        await asyncio.wait_for(asyncio.shield(returned), self._writer.timeout * 4)

    async def replay(self) -> None:
        """Apply the journal to the database, oldest entry first, each in its own transaction."""
        conn = await self._writer.connect()
        try:
            while True:
                batch = await self.journal.pending()
                if not batch:
                    return
                for seq, entry in batch:
                    await self._replay_one(conn, entry)
                    await self.journal.applied(seq)
                    self.replayed += 1
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _replay_one(self, conn: Any, entry: Entry) -> None:
        """One entry, again after a race with a release; a log row PostgreSQL refuses (a value it
        cannot store) is set aside, logged, so that it never blocks the charges behind it."""
        for attempt in range(3):
            try:
                await replay_entry(conn, entry, owner=self._writer.owner)
                return
            except ReplayRace:
                if attempt == 2:
                    raise
            except Exception as exc:
                if is_unreachable(exc) or entry.row is None:
                    raise
                log.error("outage journal: log row %s set aside: %r", entry.inference_id, exc)
                self._writer.row_set_aside()
                entry = dataclasses.replace(entry, row=None)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._writer.failing():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.replay(), self._writer.timeout * 4)
            for lease in list(self.book.leases.values()):
                if not lease.flights:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self._give_back(lease), self._writer.timeout)
        await self.journal.aclose()


def _forward(written: asyncio.Future[None], out: asyncio.Future[int], charge: int) -> None:
    if out.done():
        return
    exc = None if written.cancelled() else written.exception()
    if written.cancelled() or exc is not None:
        out.set_exception(exc or asyncio.CancelledError())
    else:
        out.set_result(charge)
