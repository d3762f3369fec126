"""Accounts on the data floor: look-ups by id and email, the balance, passwords' hashes, and the
ledger row of a top-up. Each function runs in the caller's transaction (``accounts/service.py``
holds the rules: validation, hashing, what a top-up may be)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from modelgate.store.db import Conn
from modelgate.store.schema import Account, LedgerEntry


@dataclass(frozen=True, slots=True)
class AccountInfo:
    id: int
    email: str
    is_admin: bool
    balance_credits: int
    created_at: datetime


async def get_account(conn: Conn, *, account_id: int) -> AccountInfo | None:
    """The account's email, admin flag and available balance (credits not held by requests in flight)."""
    row = (
        await conn.execute(
            select(
                Account.id, Account.email, Account.is_admin, Account.balance_credits, Account.created_at
            ).where(Account.id == account_id)
        )
    ).first()
    if row is None:
        return None
    return AccountInfo(int(row[0]), row[1], bool(row[2]), int(row[3]), row[4])


async def balance(conn: Conn, *, account_id: int) -> int | None:
    """The available balance in credits (None for an unknown account)."""
    value = (await conn.execute(select(Account.balance_credits).where(Account.id == account_id))).scalar()
    return int(value) if value is not None else None


async def balances(conn: Conn, *, account_ids: list[int]) -> dict[int, int]:
    """The balances of several accounts at once (the console's Usage page); unknown ids are left out."""
    if not account_ids:
        return {}
    query = select(Account.id, Account.balance_credits).where(Account.id.in_(account_ids))
    return {int(r.id): int(r.balance_credits) for r in await conn.execute(query)}


async def login_row(conn: Conn, *, email: str) -> tuple[int, str | None] | None:
    """``(id, password_hash)`` of the account with this (normalised) email."""
    q = select(Account.id, Account.password_hash).where(Account.email == email)
    row = (await conn.execute(q)).first()
    return (int(row[0]), row[1]) if row is not None else None


async def account_id_by_email(conn: Conn, *, email: str) -> int | None:
    row = (await conn.execute(select(Account.id).where(Account.email == email.strip().lower()))).first()
    return int(row[0]) if row is not None else None


async def password_hash(conn: Conn, *, account_id: int) -> str | None:
    return (await conn.execute(select(Account.password_hash).where(Account.id == account_id))).scalar()


async def set_password_hash(conn: Conn, *, account_id: int, hashed: str) -> None:
    await conn.execute(update(Account).where(Account.id == account_id).values(password_hash=hashed))


async def insert_account(
    conn: Conn, *, email: str, password_hash: str | None = None, is_admin: bool = False
) -> int:
    """A new account with a zero balance; returns its id."""
    result = await conn.execute(
        insert(Account)
        .values(email=email, password_hash=password_hash, is_admin=is_admin, balance_credits=0)
        .returning(Account.id)
    )
    return int(result.scalar_one())


async def any_account(conn: Conn) -> bool:
    return (await conn.execute(select(Account.id).limit(1))).first() is not None


async def add_credits(
    conn: Conn, *, account_id: int, credits: int, kind: str, description: str, reference_id: str | None
) -> None:
    """The balance and its ledger row, in the caller's transaction (``reference_id`` is unique)."""
    await conn.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(balance_credits=Account.balance_credits + credits)
    )
    await conn.execute(
        insert(LedgerEntry).values(
            account_id=account_id,
            kind=kind,
            credits=credits,
            description=description,
            reference_id=reference_id,
        )
    )


@dataclass(frozen=True, slots=True)
class SignInState:
    is_admin: bool
    disabled: bool
    has_password: bool


async def sign_in_state(conn: Conn, *, account_id: int) -> SignInState | None:
    """What a sign-in (password, link, single sign-on) or a SCIM update needs to know of an account:
    where to send it, whether it may."""
    row = (
        await conn.execute(
            select(Account.is_admin, Account.disabled, Account.password_hash).where(Account.id == account_id)
        )
    ).first()
    if row is None:
        return None
    return SignInState(bool(row[0]), bool(row[1]), row[2] is not None)
