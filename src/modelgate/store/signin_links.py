"""One-time sign-in links: ``/app/sign-in/<token>`` signs its account in once, before it expires.

The first start prints one for the admin account (which has no password yet); ``modelgate admin
sign-in-link --email ...`` prints a fresh one for any account (a forgotten password). The table keeps
only the SHA-256 digest of the token; using a link deletes it, so it works once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account
from modelgate.store.schema_web import SignInLink

LINK_TTL = timedelta(hours=24)
LINK_PATH = "/app/sign-in/"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_signin_link(conn: AsyncConnection, *, account_id: int, ttl: timedelta = LINK_TTL) -> str:
    """A new one-time token for ``account_id`` (returned only here)."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    await conn.execute(delete(SignInLink).where(SignInLink.expires_at < now))
    await conn.execute(
        insert(SignInLink).values(
            digest=_digest(token), account_id=account_id, created_at=now, expires_at=now + ttl
        )
    )
    return token


async def peek_signin_link(conn: AsyncConnection, *, token: str) -> str | None:
    """The email the link signs in as, while it is valid (without using it)."""
    row = (
        await conn.execute(
            select(Account.email, SignInLink.expires_at)
            .join(Account, Account.id == SignInLink.account_id)
            .where(SignInLink.digest == _digest(token), Account.disabled.is_(False))
        )
    ).first()
    if row is None or _aware(row[1]) <= datetime.now(UTC):
        return None
    return str(row[0])


async def consume_signin_link(conn: AsyncConnection, *, token: str) -> int | None:
    """Use the link: its account id when it was valid (it is deleted either way), else None."""
    digest = _digest(token)
    row = (
        await conn.execute(
            select(SignInLink.account_id, SignInLink.expires_at)
            .join(Account, Account.id == SignInLink.account_id)
            .where(SignInLink.digest == digest, Account.disabled.is_(False))
        )
    ).first()
    deleted = await conn.execute(delete(SignInLink).where(SignInLink.digest == digest))
    if row is None or deleted.rowcount != 1 or _aware(row[1]) <= datetime.now(UTC):
        return None
    return int(row[0])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
