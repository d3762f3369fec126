"""Browser sessions on the data floor (``web_sessions``): the server keeps only a token's digest,
its account, the session's CSRF token and an expiry (``web/sessions.py`` makes and checks them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select

from modelgate.store.db import Conn
from modelgate.store.schema import Account
from modelgate.store.schema_web import WebSession


@dataclass(frozen=True, slots=True)
class SessionRow:
    account_id: int
    email: str
    csrf_token: str
    is_admin: bool
    expires_at: datetime  # aware (UTC)


async def insert_session(
    conn: Conn, *, digest: str, account_id: int, csrf_token: str, now: datetime, expires_at: datetime
) -> None:
    """A new session (expired ones are deleted on the way)."""
    await conn.execute(delete(WebSession).where(WebSession.expires_at < now))
    await conn.execute(
        insert(WebSession).values(
            digest=digest, account_id=account_id, csrf_token=csrf_token, created_at=now, expires_at=expires_at
        )
    )


async def delete_session(conn: Conn, *, digest: str) -> None:
    await conn.execute(delete(WebSession).where(WebSession.digest == digest))


async def session_by_digest(conn: Conn, *, digest: str) -> SessionRow | None:
    """The session with this digest, if its account is enabled (expired or not)."""
    row = (
        await conn.execute(
            select(
                WebSession.account_id,
                WebSession.csrf_token,
                WebSession.expires_at,
                Account.email,
                Account.is_admin,
            )
            .join(Account, Account.id == WebSession.account_id)
            .where(WebSession.digest == digest, Account.disabled.is_(False))
        )
    ).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    return SessionRow(row.account_id, row.email, row.csrf_token, bool(row.is_admin), expires)
