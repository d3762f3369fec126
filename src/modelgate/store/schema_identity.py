"""The tables of single sign-on and provisioning (docs/identity.md): SCIM resources and tokens, OpenID
sign-ins in progress, accounts' identities at their providers, organisations' sign-in rule; part of
``store/schema.py``'s metadata (``store/identity.py`` reads and writes them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelgate.store.schema import Base, utcnow


class ScimResource(Base):
    """A SCIM 2.0 resource (RFC 7643 User or Group) as its identity provider last wrote it
    (``identity/scim.py``): the whole document as JSON, its unique value (a User's ``userName``,
    lowercased: it is not case-exact) and, for a User, the account it provisions."""

    __tablename__ = "scim_resources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="")  # "" until per-organisation tokens
    resource_type: Mapped[str] = mapped_column(String(32))
    unique_value: Mapped[str | None] = mapped_column(String(320), default=None)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), default=None, index=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("tenant", "resource_type", "unique_value", name="uq_scim_resources_unique"),
        Index("ix_scim_resources_type", "tenant", "resource_type"),
    )


class OIDCLogin(Base):
    """A single sign-on in progress (``identity/oidc.py``): the digest of its ``state``, and the
    PKCE verifier and nonce checked when the provider sends the browser back."""

    __tablename__ = "oidc_logins"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(64))
    next_path: Mapped[str] = mapped_column(String(2000), default="/app/keys")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccountIdentity(Base):
    """An account's identity at an OpenID provider (issuer + subject), with the email and groups
    its latest sign-in carried."""

    __tablename__ = "account_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320))
    groups: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    # What its groups granted at the latest sign-in: {"orgs": {id: role}, "projects": {id: role}}
    # (migration 0016); the next sign-in takes back what they no longer grant.
    granted: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_sign_in_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_account_identities_subject"),)


class ScimToken(Base):
    """An organisation's SCIM token (``modelgate admin scim-token``): its SHA-256 digest only.
    Users it provisions join that organisation; its Groups grant roles in it alone."""

    __tablename__ = "scim_tokens"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrgSignIn(Base):
    """How an organisation's members sign in: ``sso_only`` refuses their passwords (operators
    excepted: break-glass access)."""

    __tablename__ = "org_sign_in"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    sso_only: Mapped[bool] = mapped_column(Boolean, default=False)
