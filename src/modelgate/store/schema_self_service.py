"""The tables of self-service accounts (mailed one-time tokens, two-factor credentials, alert mails
sent) and of the console's catalogue entries (issue 30); part of ``store/schema.py``'s metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelgate.store.schema import Base, utcnow


class MailToken(Base):
    """A one-time token mailed or handed out (``store/mail_tokens.py``): email verification, password
    reset, the second step of a two-factor sign-in. Only its SHA-256 digest is kept; using it deletes it."""

    __tablename__ = "mail_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # verify | reset | login2fa
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TotpCredential(Base):
    """An account's TOTP secret (RFC 6238), sealed with the instance's encryption key
    (``store/secrets.py``); ``enabled_at`` None while enrolment awaits its first code."""

    __tablename__ = "totp_credentials"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    secret_sealed: Mapped[str] = mapped_column(Text)
    enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The last time step a code was accepted for: a code works once.
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)


class RecoveryCode(Base):
    """A single-use two-factor recovery code (its SHA-256 digest)."""

    __tablename__ = "totp_recovery_codes"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)


class MailAlert(Base):
    """An alert mail sent (low balance, key budget), once per ``ref`` (the top-up or the limit
    period it is about); the primary key makes every instance send it at most once."""

    __tablename__ = "mail_alerts"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatalogEntry(Base):
    """A provider or model added on the operator console (``gateway/catalog_overlay.py``), merged over the
    catalogue files on every instance; a provider's API key is sealed (``store/secrets.py``)."""

    __tablename__ = "catalog_entries"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # provider | model
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    body: Mapped[str] = mapped_column(Text)  # the entry as the catalogue YAML would hold it (JSON)
    secret_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    updated_by: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
