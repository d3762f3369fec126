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
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
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


class CachedResponse(Base):
    """One cached answer (docs/cache.md), in its tenant's namespace, until ``expires_at`` (epoch
    seconds). A semantic entry also has the hash of everything but its last user turn (``prefix``),
    that turn's numbers and negations (``guard``) and its embedding (``vector``: float32, unit
    length; the turn's text itself is not kept)."""

    __tablename__ = "response_cache"

    namespace: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    door: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str | None] = mapped_column(String(64), default=None)
    guard: Mapped[str | None] = mapped_column(String(200), default=None)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_response_cache_prefix", "namespace", "prefix"),
        Index("ix_response_cache_expires", "expires_at"),
    )


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


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


class StoredResponse(Base):
    """A Responses API answer kept for ``previous_response_id``, retrieval and deletion (``store``
    true), per account, until ``expires_at`` (the operator's retention setting)."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key_id: Mapped[int | None] = mapped_column(Integer, default=None)
    model: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(100), default=None)
    native: Mapped[bool] = mapped_column(Boolean, default=False)  # passed through to a Responses upstream
    previous_response_id: Mapped[str | None] = mapped_column(String(128), default=None)
    thread_id: Mapped[str] = mapped_column(String(128))  # the first response of its chain
    body: Mapped[str] = mapped_column(Text)  # the response object as the client received it (JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_responses_account_thread", "account_id", "thread_id"),
        Index("ix_responses_expires", "expires_at"),
    )


class StoredResponseItem(Base):
    """The input and output items of a stored response, in order (``item_reference`` resolves
    them by id within the account)."""

    __tablename__ = "response_items"

    response_id: Mapped[str] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # input | output
    item_id: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)  # the item (JSON), as given or produced

    __table_args__ = (Index("ix_response_items_account_item", "account_id", "item_id"),)


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


# The self-service and console-catalogue tables (issue 30) live in a module of their own; imported
# here so that every table is in ``Base.metadata``.
from modelgate.store import schema_self_service  # noqa: E402, F401
