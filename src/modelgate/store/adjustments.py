"""Operator credits and corrections: one ledger row and the balance, in integer credits exactly as
typed (``billing/amounts.py``); a correction is negative and carries its reason. The ``reference_id``
(the confirmation form's nonce) is unique: a confirmation sent twice credits once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account, LedgerEntry


@dataclass(frozen=True, slots=True)
class AccountBalance:
    account_id: int
    email: str
    balance_credits: int


async def account_balance(conn: AsyncConnection, *, account_id: int) -> AccountBalance | None:
    query = select(Account.id, Account.email, Account.balance_credits).where(Account.id == account_id)
    row = (await conn.execute(query)).first()
    return None if row is None else AccountBalance(int(row.id), str(row.email), int(row.balance_credits))


async def apply_adjustment(
    conn: AsyncConnection, *, account_id: int, credits: int, description: str, reference_id: str
) -> bool:
    """Credit (``credits`` > 0, a ``topup``) or correct (< 0, an ``adjustment``) the account; False
    when ``reference_id`` was applied already (nothing changes). Two concurrent confirmations: the
    second one's insert fails on the unique ``reference_id`` (IntegrityError, the caller's rollback)."""
    if credits == 0:
        raise ValueError("an adjustment must not be zero")
    seen = select(LedgerEntry.id).where(LedgerEntry.reference_id == reference_id)
    if (await conn.execute(seen)).first() is not None:
        return False
    await conn.execute(
        insert(LedgerEntry).values(
            account_id=account_id,
            kind="topup" if credits > 0 else "adjustment",
            credits=credits,
            description=description,
            reference_id=reference_id,
        )
    )
    await conn.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(balance_credits=Account.balance_credits + credits)
    )
    return True
