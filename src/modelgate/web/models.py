"""Tables of the web UI, on the store's ``Base`` (``create_all`` covers them until migrations land).

* ``web_sessions``: server-side browser sessions. The cookie holds a random token; the table keeps
  only its SHA-256 digest, the account, the per-session CSRF token and the expiry.
* ``web_playground_keys``: the internal API key each account's playground calls are made with
  (hidden from the Keys page; its raw value is never stored or shown).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from modelgate.store.schema import Base, utcnow


class WebSession(Base):
    __tablename__ = "web_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlaygroundKey(Base):
    __tablename__ = "web_playground_keys"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))


async def ensure_web_tables(engine: AsyncEngine) -> None:
    tables = [WebSession.__table__, PlaygroundKey.__table__]
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=tables, checkfirst=True))
