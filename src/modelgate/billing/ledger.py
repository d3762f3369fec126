"""Credits: hold before the upstream call, settle to real usage after it, release on failure.

Every operation is one short transaction whose guard lives in the UPDATE itself
(``... WHERE balance_credits >= :amount``), so parallel requests can never overspend a balance or a
key's period limit, on SQLite or PostgreSQL, with one instance or many. Settling is idempotent: the
hold row is deleted first and only the request that deleted it moves money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelgate.accounts.keys import KeyIdentity
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.errors import InsufficientCreditsError, SpendLimitError
from modelgate.store.schema import Account, Hold, KeySpend, LedgerEntry

OUT_OF_CREDITS_MESSAGE = (
    "You've run out of credits. Please top up your balance or update your payment method to continue: /app/billing"
)


def period_key(retention: str | None, now: datetime | None = None) -> str:
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


@dataclass(slots=True)
class HoldTicket:
    inference_id: str
    account_id: int
    key_id: int | None
    period: str | None
    credits: int


class Ledger:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    async def hold(self, *, ident: KeyIdentity, inference_id: str, credits: int) -> HoldTicket:
        period = period_key(ident.limit_retention) if ident.limit_credits is not None else None
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(Account)
                .where(Account.id == ident.account_id, Account.balance_credits >= credits)
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
                    usd = ident.limit_credits / CREDITS_PER_USD
                    retention = ident.limit_retention or "no_reset"
                    raise SpendLimitError(
                        f"This API key has reached its spending limit of {usd:g} USD "
                        f"(retention: {retention}). Raise the limit or wait for the next period.",
                        param="limit",
                    )
            await conn.execute(
                insert(Hold).values(
                    inference_id=inference_id,
                    account_id=ident.account_id,
                    key_id=ident.key_id,
                    period=period,
                    credits=credits,
                )
            )
        return HoldTicket(inference_id, ident.account_id, ident.key_id, period, credits)

    async def _ensure_spend_row(self, conn: AsyncConnection, key_id: int, period: str) -> None:
        ins = pg_insert(KeySpend) if self._dialect == "postgresql" else sqlite_insert(KeySpend)
        await conn.execute(
            ins.values(key_id=key_id, period=period, spent_credits=0, held_credits=0).on_conflict_do_nothing()
        )

    async def settle(self, ticket: HoldTicket, *, credits: int, description: str | None = None) -> int:
        """Charge the real cost (never more than was held); returns the credits charged."""
        charge = max(0, min(credits, ticket.credits))
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
                    )
                )
            await self._unhold_spend(conn, ticket, spent=charge)
        return charge

    async def release(self, ticket: HoldTicket) -> None:
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
                HoldTicket(m["inference_id"], m["account_id"], m["key_id"], m["period"], m["credits"])
            )
        return len(rows)
