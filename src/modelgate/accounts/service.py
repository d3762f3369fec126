"""Account and key administration (keyword-only service functions)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.keys import generate_key, key_digest
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.store.schema import Account, ApiKey, LedgerEntry


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    key_id: int
    prefix: str
    account_id: int


async def get_or_create_account(conn: AsyncConnection, *, email: str, is_admin: bool = False) -> int:
    email = email.strip().lower()
    row = (await conn.execute(select(Account.id).where(Account.email == email))).first()
    if row is not None:
        return int(row[0])
    result = await conn.execute(
        insert(Account).values(email=email, is_admin=is_admin, balance_credits=0).returning(Account.id)
    )
    return int(result.scalar_one())


async def create_key(
    conn: AsyncConnection,
    *,
    account_id: int,
    name: str | None = None,
    management: bool = False,
    scopes: list[str] | None = None,
    limit_retention: str | None = None,
    limit_credits: int | None = None,
) -> NewKey:
    for _ in range(5):
        raw = generate_key()
        prefix = raw[:8]
        taken = (await conn.execute(select(ApiKey.id).where(ApiKey.prefix == prefix))).first()
        if taken is None:
            break
    else:  # pragma: no cover - 2^32 prefixes
        raise RuntimeError("could not find a free key prefix")
    result = await conn.execute(
        insert(ApiKey)
        .values(
            account_id=account_id,
            prefix=prefix,
            digest=key_digest(raw),
            name=name,
            is_management=management,
            scopes=scopes,
            limit_retention=limit_retention,
            limit_credits=limit_credits,
        )
        .returning(ApiKey.id)
    )
    return NewKey(key=raw, key_id=int(result.scalar_one()), prefix=prefix, account_id=account_id)


async def top_up(
    conn: AsyncConnection, *, account_id: int, usd: float, description: str = "top-up"
) -> int:
    """Add credits to an account: one ledger row and the balance, in the caller's transaction."""
    credits = round(usd * CREDITS_PER_USD)
    if credits <= 0:
        raise ValueError("a top-up must be positive")
    await conn.execute(
        update(Account).where(Account.id == account_id).values(balance_credits=Account.balance_credits + credits)
    )
    await conn.execute(
        insert(LedgerEntry).values(account_id=account_id, kind="topup", credits=credits, description=description)
    )
    return credits


async def account_count(conn: AsyncConnection) -> int:
    return len((await conn.execute(select(Account.id).limit(1))).all())
