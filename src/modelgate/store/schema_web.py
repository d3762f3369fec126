"""The tables of the browser side: sessions, one-time sign-in links, the playground's internal keys
and the operator console's audit log; part of ``store/schema.py``'s metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelgate.store.schema import Base, utcnow


class WebSession(Base):
    """A browser session: the cookie holds a random token, the table only its SHA-256 digest."""

    __tablename__ = "web_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlaygroundKey(Base):
    """The internal API key an account's playground calls are made with (hidden from key lists)."""

    __tablename__ = "web_playground_keys"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))


class AuditEntry(Base):
    """One operator action (top-up, account disabled, setting changed...), newest shown on /admin."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None)  # None: the command line
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(Integer, default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # An organisation's management action (migration 0020, store/audit.py): its organisation,
    # project, the resource changed (``proj_3``, ``user_7``...), the key and address of its caller;
    # ``action`` is then OpenAI's event type and ``detail`` the event's JSON payload.
    org_id: Mapped[int | None] = mapped_column(Integer, default=None)
    project_id: Mapped[int | None] = mapped_column(Integer, default=None)
    resource_id: Mapped[str | None] = mapped_column(String(64), default=None)
    actor_key: Mapped[str | None] = mapped_column(String(64), default=None)
    actor_ip: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        Index("ix_audit_log_created", "created_at"),
        Index("ix_audit_log_org", "org_id", "id"),
    )


class SignInLink(Base):
    """A one-time sign-in link (first start, ``modelgate admin sign-in-link``): its token's digest."""

    __tablename__ = "web_signin_links"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
