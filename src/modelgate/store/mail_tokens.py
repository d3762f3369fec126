"""One-time tokens for links sent by mail (email verification, password reset) and for the second
step of a two-factor sign-in: random 256-bit tokens of which only the SHA-256 digest is stored, each
for one purpose, used once (using deletes it), refused after ``expires_at``.

Also the account changes those tokens lead to (verified email, new password), so that the SQL of
the flow stays here.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account
from modelgate.store.schema_self_service import MailToken
from modelgate.store.schema_web import WebSession

PURPOSES = ("verify", "reset", "login2fa")


@dataclass(frozen=True, slots=True)
class TokenOwner:
    account_id: int
    email: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def create_token(
    conn: AsyncConnection, *, account_id: int, purpose: str, ttl: timedelta, replace: bool = True
) -> str:
    """A new token (returned only here). ``replace``: earlier tokens of that account and purpose stop
    working (the newest reset link is the one that counts)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    await conn.execute(delete(MailToken).where(MailToken.expires_at < now))
    if replace:
        await conn.execute(
            delete(MailToken).where(MailToken.account_id == account_id, MailToken.purpose == purpose)
        )
    await conn.execute(
        insert(MailToken).values(
            digest=digest(token), account_id=account_id, purpose=purpose, created_at=now, expires_at=now + ttl
        )
    )
    return token


async def peek_token(conn: AsyncConnection, *, token: str, purpose: str) -> TokenOwner | None:
    """Whose token it is while it is valid, without using it (link previews do not use it up)."""
    row = (
        await conn.execute(
            select(Account.id, Account.email, MailToken.expires_at)
            .join(Account, Account.id == MailToken.account_id)
            .where(
                MailToken.digest == digest(token[:200]),
                MailToken.purpose == purpose,
                Account.disabled.is_(False),
            )
        )
    ).first()
    if row is None or _aware(row.expires_at) <= datetime.now(UTC):
        return None
    return TokenOwner(int(row.id), str(row.email))


async def consume_token(conn: AsyncConnection, *, token: str, purpose: str) -> TokenOwner | None:
    """Use the token: its owner when it was valid (it is deleted either way), else None. Two
    concurrent uses: only the one whose delete removed the row gets the owner."""
    owner = await peek_token(conn, token=token, purpose=purpose)
    deleted = await conn.execute(
        delete(MailToken).where(MailToken.digest == digest(token[:200]), MailToken.purpose == purpose)
    )
    if owner is None or deleted.rowcount != 1:
        return None
    return owner


async def mark_email_verified(conn: AsyncConnection, *, account_id: int) -> None:
    await conn.execute(
        update(Account)
        .where(Account.id == account_id, Account.email_verified_at.is_(None))
        .values(email_verified_at=datetime.now(UTC))
    )


async def reset_password(conn: AsyncConnection, *, account_id: int, password_hash: str) -> None:
    """A new password hash; every reset link and web session of the account ends (a reset after a
    stolen password signs the thief out)."""
    await conn.execute(update(Account).where(Account.id == account_id).values(password_hash=password_hash))
    await conn.execute(
        delete(MailToken).where(MailToken.account_id == account_id, MailToken.purpose == "reset")
    )
    await conn.execute(delete(WebSession).where(WebSession.account_id == account_id))


async def account_for_email(conn: AsyncConnection, *, email: str) -> TokenOwner | None:
    """An enabled account by its (normalised) email."""
    row = (
        await conn.execute(
            select(Account.id, Account.email).where(Account.email == email, Account.disabled.is_(False))
        )
    ).first()
    return None if row is None else TokenOwner(int(row.id), str(row.email))


async def account_email(conn: AsyncConnection, *, account_id: int) -> tuple[str, datetime | None] | None:
    """An account's email and when it was verified."""
    row = (
        await conn.execute(select(Account.email, Account.email_verified_at).where(Account.id == account_id))
    ).first()
    return None if row is None else (str(row.email), row.email_verified_at)


async def password_hash_of(conn: AsyncConnection, *, account_id: int) -> str | None:
    query = select(Account.password_hash).where(Account.id == account_id)
    value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else str(value)
