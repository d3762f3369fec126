"""SQLAlchemy 2 models of everything modelgate persists (SQLite or PostgreSQL).

Money is kept in integer credits (1 USD = 2,000,000 credits) so that sums are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    balance_credits: Mapped[int] = mapped_column(BigInteger, default=0)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)  # an operator: /admin
    # A disabled account's keys are refused and its web sessions end (operator console).
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Postpaid (migration 0012): holds do not need a balance (it may go below zero); budgets still
    # apply. Only meaningful on an organisation's pool account.
    postpaid: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the owner opened the verification link mailed at sign-up (None: not verified).
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Organisation(Base):
    """A credit pool shared by its members' projects (migration 0012, docs/organisations.md).

    Its id is the id of the ``accounts`` row that holds its balance: every ledger, hold, log and
    stored-response row names the pool in ``account_id``. A personal organisation's pool is its
    person's own account (each account before 0012 became one); a team organisation's pool is an
    account row that cannot sign in (its ``email`` has no ``@``)."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrgMember(Base):
    """A person's role in an organisation: owner | admin | member | billing (read-only billing)."""

    __tablename__ = "org_members"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Project(Base):
    """A group of keys within an organisation, with its own model allow-list and rate limits."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON, default=None)  # None: every model
    rpm: Mapped[int | None] = mapped_column(Integer, default=None)
    tpm: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When it was archived (OpenAI's Admin API, migration 0019): its keys are disabled then.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ProjectMember(Base):
    """A person's role in a project: owner | member."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Budget(Base):
    """A hard spend limit per period at one level: the organisation (``project_id`` and
    ``member_id`` NULL), a project (``member_id`` NULL) or a member within a project. A key's own
    limit stays on ``api_keys`` (the AI/ML API contract). Every hold checks every budget its key
    falls under, in the same conditional update as the balance."""

    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), default=None
    )
    member_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), default=None)
    period: Mapped[str] = mapped_column(String(8))  # day | week | month | none
    limit_credits: Mapped[int] = mapped_column(BigInteger)
    # Spend alerts: percentages of the limit (e.g. [50, 80, 100]) and a webhook URL (optional).
    alert_thresholds: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    alert_webhook: Mapped[str | None] = mapped_column(String(2000), default=None)
    # The webhook's signing secret (``whsec_...``), sealed (``store/secrets.py``): shown once when set.
    alert_webhook_secret: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BudgetSpend(Base):
    """Spend (settled + held) against one budget in one period bucket (``day:2026-12-02``, ``all``)."""

    __tablename__ = "budget_spend"

    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    spent_credits: Mapped[int] = mapped_column(BigInteger, default=0)
    held_credits: Mapped[int] = mapped_column(BigInteger, default=0)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    is_management: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    scopes: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    limit_retention: Mapped[str | None] = mapped_column(String(16), default=None)
    limit_credits: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Migration 0012: the key's project and the member it belongs to (its member budget), what it may
    # call and how fast (None: no restriction beyond the project's), and when it stops working.
    project_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    member_id: Mapped[int | None] = mapped_column(Integer, default=None)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    # The response cache's mode for this key's requests that send no x-modelgate-cache header
    # (off | exact | semantic; None: the operator's default; migration 0018, docs/cache.md).
    cache_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    rpm: Mapped[int | None] = mapped_column(Integer, default=None)
    tpm: Mapped[int | None] = mapped_column(Integer, default=None)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # A project service account's key (migration 0020, store/schema_admin.py): member_id is then None.
    service_account_id: Mapped[int | None] = mapped_column(Integer, default=None)


class KeySpend(Base):
    """Spend (settled + held) of one key in one limit period (``day:2026-11-24``, ``all``...)."""

    __tablename__ = "key_spend"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    spent_credits: Mapped[int] = mapped_column(BigInteger, default=0)
    held_credits: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerEntry(Base):
    """Append-only money movements: top-ups (positive) and charges (negative)."""

    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key_id: Mapped[int | None] = mapped_column(Integer, default=None)
    kind: Mapped[str] = mapped_column(String(16))  # topup | charge | adjustment
    credits: Mapped[int] = mapped_column(BigInteger)
    reference_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_ledger_account_created", "account_id", "created_at"),
        # /v2/billing/transactions pages newest first by id within an account.
        Index("ix_ledger_account_id", "account_id", "id"),
        # monthly_usage of a key: its charges since the start of the month.
        Index("ix_ledger_key_created", "key_id", "created_at"),
    )


class Hold(Base):
    """An open reservation of credits for a request in flight (recoverable after a crash)."""

    __tablename__ = "holds"

    inference_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key_id: Mapped[int | None] = mapped_column(Integer, default=None)
    period: Mapped[str | None] = mapped_column(String(32), default=None)
    credits: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The process that made the hold (``store/holds_owners.py``): once it is gone, any other process
    # releases its holds. NULL: made by a version without owners (released by age only).
    owner: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The budget buckets the hold counts against (migration 0012): ``budget_id/period`` separated
    # by spaces (``7/day:2026-12-02 9/all``); NULL when none.
    budgets: Mapped[str | None] = mapped_column(Text, default=None)
    # No secondary indexes: the table only ever holds the requests in flight, and every request
    # inserts and deletes one row, so each index would cost two B-tree writes per request.


class RequestLog(Base):
    """One row per request, failed ones included (with zero cost)."""

    __tablename__ = "request_logs"

    inference_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[int | None] = mapped_column(Integer, default=None)
    key_prefix: Mapped[str | None] = mapped_column(String(8), default=None)
    model: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(100), default=None)
    status: Mapped[str] = mapped_column(String(16))  # success | error
    http_status: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16), default="api")
    door: Mapped[str] = mapped_column(String(16), default="chat", server_default="chat")
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # The price sheet's categories (migration 0009): cache writes by lifetime, the tier the prompt
    # fell in (0: base prices), per-use counts and units as JSON, and the credits charged beyond the
    # hold (the overdraft rule).
    cache_write_5m_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cache_write_1h_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    audio_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tier: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    uses: Mapped[str | None] = mapped_column(Text, default=None)
    overage_credits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    finish_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    client_request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    # Request detail (migration 0013): time to first token (streams), routes tried, the upstream
    # model of the route that answered.
    ttft_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    attempts: Mapped[int | None] = mapped_column(Integer, default=None)
    route: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The response cache (migration 0014, docs/cache.md): hit:exact | hit:semantic | miss:exact |
    # miss:semantic (None: not asked), and the credits a hit saved (what the answer cost, less the
    # hit's price).
    cache: Mapped[str | None] = mapped_column(String(16), default=None)
    cache_saved_credits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    __table_args__ = (
        Index("ix_request_logs_account_created", "account_id", "created_at"),
        Index("ix_request_logs_key_created", "key_id", "created_at"),
        Index("ix_request_logs_key_client_request", "key_id", "client_request_id"),
    )


class RequestBody(Base):
    """A request's prompt and final answer, kept only while the operator has body logging on
    (``store/request_bodies.py``, docs/observability.md) and deleted once older than its retention.
    Each text is bounded; a ``*_truncated`` flag says it was cut. Secrets are masked before storing."""

    __tablename__ = "request_bodies"

    inference_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    request: Mapped[str | None] = mapped_column(Text, default=None)
    response: Mapped[str | None] = mapped_column(Text, default=None)
    request_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    response_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_request_bodies_created", "created_at"),)


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# The tables of other concepts live in modules of their own (callers import each table from the
# module that defines it); imported here so that every table is in ``Base.metadata``.
from modelgate.store import (  # noqa: E402, F401
    schema_admin,
    schema_alerts,
    schema_identity,
    schema_responses,
    schema_self_service,
    schema_web,
)
