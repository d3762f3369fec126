"""The ledger on PostgreSQL, through the process's group-commit writer (``store/pg_writer.py``).

Same contract and same guards as ``Ledger`` (a hold is refused unless the balance, and the key's
period limit, cover it at that moment under the row lock), but a busy instance applies all of its
queued holds, settles, releases and log rows in one statement and one commit, instead of one
transaction each queueing on the account's row lock. Exact with one instance or many: every guard
is evaluated by PostgreSQL on the locked rows.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelgate.errors import DatabaseUnavailableError, InsufficientCreditsError
from modelgate.store.holds_owners import PGOwners, owners_of, select_stale
from modelgate.store.keys import KeyIdentity, revoked_key_error
from modelgate.store.lease_keeper import LeaseKeeper
from modelgate.store.ledger import (
    OUT_OF_CREDITS_MESSAGE,
    HoldTicket,
    LedgerBase,
    budget_buckets,
    budget_error,
    period_key,
    spend_limit_error,
)
from modelgate.store.pg_batch import (
    HOLD_ACCOUNT_DISABLED,
    HOLD_KEY_DISABLED,
    HOLD_KEY_GONE,
    HOLD_NO_CREDITS,
    HOLD_OK,
    HOLD_OVER_BUDGET,
    HOLD_OVER_LIMIT,
)
from modelgate.store.pg_writer import PGWriter

log = logging.getLogger("modelgate.billing")

_NO_ROOM = (HOLD_NO_CREDITS, HOLD_OVER_LIMIT)  # and HOLD_OVER_BUDGET + i

_HOLDS_TO_CHECK = text(
    "SELECT inference_id, account_id, key_id, period, credits, owner, created_at < :cutoff AS expired,"
    " budgets FROM holds WHERE owner IS DISTINCT FROM :me OR created_at < :cutoff"
)


class PGLedger(LedgerBase):
    def __init__(self, writer: PGWriter, engine: AsyncEngine, leases: LeaseKeeper | None = None) -> None:
        super().__init__()
        self._writer = writer
        self._engine = engine
        self._owners = PGOwners(engine, writer.owner)
        self.leases = leases  # riding out an outage (store/leases.py); None: off

    async def hold(self, *, ident: KeyIdentity, inference_id: str, credits: int) -> HoldTicket:
        """Reserve ``credits`` (403 when the balance or the key's period limit cannot cover them).
        If the caller is cancelled before the batch commits, the writer releases the hold. With
        leases, a hold the database cannot take (unreachable) is admitted on the key's lease."""
        limited = ident.limit_credits is not None
        period = period_key(ident.limit_retention) if limited else None
        buckets = budget_buckets(ident)
        leases = self.leases
        if leases is not None:
            leases.book.seen(ident)
        try:
            code = await self._writer.hold(
                inference_id=inference_id,
                account_id=ident.account_id,
                key_id=ident.key_id,
                period=period,
                credits=credits,
                limit=ident.limit_credits if limited else None,
                budgets=buckets,
            )
        except DatabaseUnavailableError:
            leased = leases.draw(ident, inference_id, credits) if leases is not None else None
            if leased is None:
                raise
            return leased
        if (
            leases is not None
            and (code in _NO_ROOM or code >= HOLD_OVER_BUDGET)
            and await leases.give_back_for(ident.account_id, buckets)
        ):  # the room this instance leased goes back first: a boundary is reached exactly
            code = await self._writer.hold(
                inference_id=inference_id,
                account_id=ident.account_id,
                key_id=ident.key_id,
                period=period,
                credits=credits,
                limit=ident.limit_credits if limited else None,
                budgets=buckets,
            )
        if code == HOLD_NO_CREDITS:
            raise InsufficientCreditsError(OUT_OF_CREDITS_MESSAGE)
        if code == HOLD_OVER_LIMIT:
            raise spend_limit_error(ident, credits)
        if code >= HOLD_OVER_BUDGET:
            raise budget_error(ident, code - HOLD_OVER_BUDGET)
        if code != HOLD_OK:  # the key was revoked since this instance cached it
            refusal = revoked_key_error(
                key_id=ident.key_id,
                gone=code == HOLD_KEY_GONE,
                account_disabled=code == HOLD_ACCOUNT_DISABLED,
                key_disabled=code == HOLD_KEY_DISABLED,
            )
            assert refusal is not None, code
            raise refusal
        return HoldTicket(inference_id, ident.account_id, ident.key_id, period, credits, buckets)

    def settle(
        self, ticket: HoldTicket, *, credits: int, description: str | None = None
    ) -> asyncio.Future[int]:
        leases = self.leases
        if leases is not None:
            if ticket.lease is not None:  # admitted on a lease: journaled, applied once PG is back
                fut = leases.finish(ticket, max(0, credits), description)
                self._pending.add(fut)
                fut.add_done_callback(self._pending.discard)
                return fut
            leases.book.charged(ticket.key_id, ticket.credits, credits)
        fut = self._writer.settle(
            inference_id=ticket.inference_id,
            account_id=ticket.account_id,
            limited=ticket.period is not None or ticket.budgets is not None,
            charge=max(0, credits),  # the whole real cost (overdraft rule)
            model=description,
        )
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        return fut

    async def release(self, ticket: HoldTicket) -> None:
        if ticket.lease is not None and self.leases is not None:
            await self._tracked(self.leases.finish(ticket, 0, None))
            return
        await self._tracked(
            self._writer.settle(
                inference_id=ticket.inference_id,
                account_id=ticket.account_id,
                limited=ticket.period is not None or ticket.budgets is not None,
                charge=0,
                model=None,
            )
        )

    async def release_stale(self, *, older_than: timedelta) -> int:
        """Release the holds of processes that are gone, and any hold older than ``older_than``."""
        me = self._writer.owner
        cutoff = datetime.now(UTC) - older_than
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_HOLDS_TO_CHECK, {"me": me, "cutoff": cutoff})).all()
        if not rows:
            return 0
        gone = await self._owners.gone(owners_of(rows, me))
        stale = select_stale(rows, me=me, gone=gone)
        if not stale:
            return 0
        released = await asyncio.gather(
            *(
                self._tracked(
                    self._writer.settle(
                        inference_id=r[0],
                        account_id=r[1],
                        limited=r[3] is not None or r[7] is not None,
                        charge=0,
                        model=None,
                    )
                )
                for r in stale
            )
        )
        log.warning(
            "released %d holds left by %d stopped processes or past their deadline", len(stale), len(gone)
        )
        return len(released)

    def writes_failing(self) -> bool:
        return self._writer.failing()

    async def flush(self) -> None:
        await super().flush()
        await self._writer.flush()
        if self.leases is not None:
            await self.leases.journal.flush()
