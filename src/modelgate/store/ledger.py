"""Credits: hold before the upstream call, settle to real usage after it, release on failure.

Every operation is one short transaction whose guard lives in the UPDATE itself
(``... WHERE balance_credits >= :amount``), so parallel requests can never overspend a balance or a
key's period limit, on SQLite or PostgreSQL, with one instance or many. Settling is idempotent: the
hold row is deleted first and only the request that deleted it moves money.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, insert, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelgate.catalog.prices import CREDITS_PER_USD
from modelgate.errors import SPEND_LIMIT_REACHED, InsufficientCreditsError, SpendLimitError
from modelgate.money import usd_text
from modelgate.store.budget_holds import hold_budget, unhold_budget
from modelgate.store.db import dialect_insert
from modelgate.store.keys import KeyIdentity
from modelgate.store.schema import Account, Hold, KeySpend, LedgerEntry

# The documented 403 text (errors-with-status-code-4xx.md), pointing at this instance's billing page.
OUT_OF_CREDITS_MESSAGE = (
    "You've run out of credits. Please top up your balance or update your payment method to continue: "
    "/app/billing/"
)


def period_key(retention: str | None, now: datetime | None = None) -> str:
    """The spend bucket of a key limit or budget; periods reset at 00:00 UTC. Without ``now``, the
    answer is cached per UTC day (the hot path asks it for every level of every hold)."""
    if now is None:
        return _period_key_today(retention, int(time.time() // 86400))
    return _period_key_at(retention, now)


@lru_cache(maxsize=64)
def _period_key_today(retention: str | None, day: int) -> str:
    return _period_key_at(retention, datetime.fromtimestamp(day * 86400 + 43200, UTC))


def _period_key_at(retention: str | None, now: datetime | None) -> str:
    """The spend bucket of a key limit; periods reset at 00:00 UTC."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if retention == "day":
        return f"day:{now:%Y-%m-%d}"
    if retention == "week":
        monday = now.date() - timedelta(days=now.weekday())
        return f"week:{monday:%Y-%m-%d}"
    if retention == "month":
        return f"month:{now:%Y-%m}"
    return "all"


def period_start(retention: str | None, now: datetime | None = None) -> datetime | None:
    """When the current limit period began (00:00 UTC); None for ``no_reset`` (all time)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if retention == "day":
        return midnight
    if retention == "week":
        return midnight - timedelta(days=now.weekday())
    if retention == "month":
        return midnight.replace(day=1)
    return None


def month_start(now: datetime | None = None) -> datetime:
    start = period_start("month", now)
    assert start is not None
    return start


@dataclass(slots=True)
class HoldTicket:
    inference_id: str
    account_id: int
    key_id: int | None
    period: str | None
    credits: int
    budgets: str | None = None  # the budget buckets held, as in ``holds.budgets``
    lease: str | None = None  # admitted on this lease while PostgreSQL was unreachable (store/leases.py)


def budget_buckets(ident: KeyIdentity, now: datetime | None = None) -> str | None:
    """The budget buckets a hold of this key counts against (``holds.budgets``), or None."""
    if not ident.budgets:
        return None
    if now is None:
        return _buckets_today(ident.budgets, int(time.time() // 86400))
    return " ".join(f"{b.id}/{period_key(b.period, now)}" for b in ident.budgets)


@lru_cache(maxsize=4096)
def _buckets_today(budgets: tuple[Any, ...], day: int) -> str:
    return " ".join(f"{b.id}/{_period_key_today(b.period, day)}" for b in budgets)


@lru_cache(maxsize=4096)
def split_buckets(buckets: str | None) -> tuple[tuple[int, str], ...]:
    """``holds.budgets`` back into (budget id, period bucket) pairs (cached: a few distinct values)."""
    if not buckets:
        return ()
    out = []
    for part in buckets.split(" "):
        bid, _, period = part.partition("/")
        out.append((int(bid), period))
    return tuple(out)


_PER = {"day": "per day", "week": "per week", "month": "per month"}


def budget_error(ident: KeyIdentity, index: int) -> SpendLimitError:
    """The refusal by the key's ``index``-th budget (its organisation's, project's or member's)."""
    b = ident.budgets[index] if 0 <= index < len(ident.budgets) else None
    if b is None:
        return SpendLimitError("A budget this API key falls under has been reached.", code="budget_exceeded")
    whose = {"organisation": "organisation", "project": "project", "member": "member budget in the project"}
    usd = usd_text(b.limit_credits / CREDITS_PER_USD)
    return SpendLimitError(
        f"The {whose.get(b.level, b.level)} budget of {usd} {_PER.get(b.period, 'in total')}"
        " this API key"
        " falls under has been reached. Raise the budget or wait for the next period.",
        code="budget_exceeded",
    )


_LIMIT_PERIODS = {
    "day": ("today", "tomorrow (00:00 UTC)"),
    "week": ("this week", "next Monday (00:00 UTC)"),
    "month": ("this month", "the 1st of next month (00:00 UTC)"),
}


def spend_limit_error(ident: KeyIdentity, credits: int = 0) -> SpendLimitError:
    """The refusal of a hold the key's period limit cannot cover, in plain words and the one money
    format (``$0.000001``, never ``1e-06 USD``)."""
    limit = usd_text((ident.limit_credits or 0) / CREDITS_PER_USD)
    period, reset = _LIMIT_PERIODS.get(ident.limit_retention or "", ("in total", ""))
    need = f" (this request needs up to {usd_text(credits / CREDITS_PER_USD)})" if credits > 0 else ""
    wait = f", or wait until {reset}" if reset else ""
    return SpendLimitError(
        f"{SPEND_LIMIT_REACHED}: its limit is {limit} {period}{need}. "
        f"Raise the limit on the Keys page{wait}.",
        param="limit",
    )


class LedgerBase(ABC):
    """What every ledger shares: tracking of in-flight work, so that ``flush()`` gives
    read-your-writes to the billing endpoints and shutdown loses nothing."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()

    def _spawn(self, coro: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.ensure_future(coro)
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        return fut

    async def _tracked(self, awaitable: Any) -> Any:
        return await self._spawn(awaitable)

    def writes_failing(self) -> bool:
        """Whether writes have been failing for longer than a request waits (the database is
        unreachable or locked); ``/ready`` reports it."""
        return False

    async def flush(self) -> None:
        """Return once every settle/release started so far is committed."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def drain(self) -> None:
        """Wait for in-flight work (called at shutdown)."""
        await self.flush()

    @abstractmethod
    async def hold(self, *, ident: KeyIdentity, inference_id: str, credits: int) -> HoldTicket:
        """Reserve ``credits`` or raise InsufficientCreditsError / SpendLimitError (403)."""

    @abstractmethod
    def settle(
        self, ticket: HoldTicket, *, credits: int, description: str | None = None
    ) -> asyncio.Future[int]:
        """Start charging the real cost (at most the hold); the future resolves, once committed, to
        what was charged. Idempotent. Tracked by ``flush`` whether or not anybody awaits it (the
        request path does not: a client leaving cannot cancel its charge)."""

    @abstractmethod
    async def release(self, ticket: HoldTicket) -> None:
        """Give the whole hold back (the request failed); idempotent."""

    @abstractmethod
    async def release_stale(self, *, older_than: timedelta) -> int:
        """Release holds older than ``older_than`` (left by a crashed process)."""


class Ledger(LedgerBase):
    """The ledger through SQLAlchemy: PostgreSQL (exact across instances), or an in-memory SQLite."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self._engine = engine
        self._dialect = engine.dialect.name

    async def hold(self, *, ident: KeyIdentity, inference_id: str, credits: int) -> HoldTicket:
        """Reserve ``credits`` (403 when the balance or the key's period limit cannot cover them).

        Cancellation-safe: the transaction runs in its own task; if the caller is cancelled while
        it commits, the hold that nobody will settle is released as soon as it exists.
        """
        task = asyncio.ensure_future(self._hold(ident=ident, inference_id=inference_id, credits=credits))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            task.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        self._spawn(self.release(task.result()))

    async def _hold(self, *, ident: KeyIdentity, inference_id: str, credits: int) -> HoldTicket:
        period = period_key(ident.limit_retention) if ident.limit_credits is not None else None
        buckets = budget_buckets(ident)
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(Account)
                .where(
                    Account.id == ident.account_id,
                    or_(Account.balance_credits >= credits, Account.postpaid),
                )
                .values(balance_credits=Account.balance_credits - credits)
            )
            if res.rowcount != 1:
                raise InsufficientCreditsError(OUT_OF_CREDITS_MESSAGE)
            if period is not None and ident.limit_credits is not None:
                await self._ensure_spend_row(conn, ident.key_id, period)
                res = await conn.execute(
                    update(KeySpend)
                    .where(
                        KeySpend.key_id == ident.key_id,
                        KeySpend.period == period,
                        KeySpend.spent_credits + KeySpend.held_credits + credits <= ident.limit_credits,
                    )
                    .values(held_credits=KeySpend.held_credits + credits)
                )
                if res.rowcount != 1:
                    raise spend_limit_error(ident, credits)
            for i, (budget_id, bucket) in enumerate(split_buckets(buckets)):
                if not await hold_budget(
                    conn, self._dialect, budget_id=budget_id, period=bucket, credits=credits
                ):
                    raise budget_error(ident, i)
            await conn.execute(
                insert(Hold).values(
                    inference_id=inference_id,
                    account_id=ident.account_id,
                    key_id=ident.key_id,
                    period=period,
                    credits=credits,
                    budgets=buckets,
                )
            )
        return HoldTicket(inference_id, ident.account_id, ident.key_id, period, credits, buckets)

    async def _ensure_spend_row(self, conn: AsyncConnection, key_id: int, period: str) -> None:
        ins = dialect_insert(self._dialect, KeySpend)
        await conn.execute(
            ins.values(key_id=key_id, period=period, spent_credits=0, held_credits=0).on_conflict_do_nothing()
        )

    def settle(
        self, ticket: HoldTicket, *, credits: int, description: str | None = None
    ) -> asyncio.Future[int]:
        """Charge the real cost, also beyond the hold (the overdraft rule: the balance may go past
        zero by this request's overage); resolves to the credits charged."""
        return self._spawn(self._settle(ticket, credits=credits, description=description))

    async def _settle(self, ticket: HoldTicket, *, credits: int, description: str | None) -> int:
        charge = max(0, credits)  # the whole real cost (overdraft rule, docs/pricing.md)
        async with self._engine.begin() as conn:
            if not await self._take_hold(conn, ticket):
                return 0
            await conn.execute(
                update(Account)
                .where(Account.id == ticket.account_id)
                .values(balance_credits=Account.balance_credits + (ticket.credits - charge))
            )
            if charge:
                await conn.execute(
                    insert(LedgerEntry).values(
                        account_id=ticket.account_id,
                        key_id=ticket.key_id,
                        kind="charge",
                        credits=-charge,
                        reference_id=ticket.inference_id,
                        description=description,
                        model=description,
                    )
                )
            await self._unhold_spend(conn, ticket, spent=charge)
        return charge

    async def release(self, ticket: HoldTicket) -> None:
        await self._tracked(self._release(ticket))

    async def _release(self, ticket: HoldTicket) -> None:
        async with self._engine.begin() as conn:
            if not await self._take_hold(conn, ticket):
                return
            await conn.execute(
                update(Account)
                .where(Account.id == ticket.account_id)
                .values(balance_credits=Account.balance_credits + ticket.credits)
            )
            await self._unhold_spend(conn, ticket, spent=0)

    async def _take_hold(self, conn: AsyncConnection, ticket: HoldTicket) -> bool:
        res = await conn.execute(delete(Hold).where(Hold.inference_id == ticket.inference_id))
        return bool(res.rowcount == 1)

    async def _unhold_spend(self, conn: AsyncConnection, ticket: HoldTicket, *, spent: int) -> None:
        for budget_id, bucket in split_buckets(ticket.budgets):
            await unhold_budget(conn, budget_id=budget_id, period=bucket, held=ticket.credits, spent=spent)
        if ticket.period is None or ticket.key_id is None:
            return
        await conn.execute(
            update(KeySpend)
            .where(KeySpend.key_id == ticket.key_id, KeySpend.period == ticket.period)
            .values(
                held_credits=KeySpend.held_credits - ticket.credits,
                spent_credits=KeySpend.spent_credits + spent,
            )
        )

    async def release_stale(self, *, older_than: timedelta) -> int:
        """Release holds left by a crashed process (their requests can no longer settle)."""
        from sqlalchemy import select

        cutoff = datetime.now(UTC) - older_than
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(Hold).where(Hold.created_at < cutoff))).all()
        for r in rows:
            m = r._mapping
            await self.release(
                HoldTicket(
                    m["inference_id"], m["account_id"], m["key_id"], m["period"], m["credits"], m["budgets"]
                )
            )
        return len(rows)
