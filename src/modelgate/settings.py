"""Runtime settings, from the environment (prefix ``MODELGATE_``) and CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OIDCProvider(BaseModel):
    """One OpenID provider people sign in through (docs/identity.md)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")  # in the callback URL: /app/sso/{name}/callback
    label: str = ""  # the log-in page's button: "Sign in with {label}"
    issuer: str  # discovery reads {issuer}/.well-known/openid-configuration
    client_id: str
    client_secret: SecretStr | None = None  # None: a public client (PKCE alone)
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    groups_claim: str = "groups"  # the ID token (or userinfo) claim listing the person's groups
    # Emails whose verification the provider does not state (no email_verified claim) are trusted
    # only from these providers (Entra ID sends none; docs/identity.md).
    trust_unverified_email: bool = False


class GroupRule(BaseModel):
    """A group (of an OIDC groups claim, or a SCIM Group's displayName) and what it grants:
    ``operator`` makes the account an operator; ``organisation`` (a team organisation's name) with
    ``org_role`` a role in it, and with ``project`` (a project's name in it) a project membership
    as ``role`` (docs/identity.md)."""

    model_config = ConfigDict(extra="forbid")

    group: str
    provider: str | None = None  # only this provider's groups ("scim": SCIM Groups; None: any)
    operator: bool = False
    organisation: str | None = None
    org_role: Literal["owner", "admin", "member", "billing"] = "member"
    project: str | None = None
    role: Literal["owner", "member"] = "member"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELGATE_", extra="ignore")

    database_url: str = Field(default="sqlite:///data/modelgate.db")
    config: Path | None = None  # operator catalogue YAML merged over the built-in one
    redis_url: str | None = None
    # Key prefix in Redis (one per deployment sharing a Redis server).
    redis_prefix: str = "modelgate:"
    # Seconds any Redis call on a request's path may take (rate limits, key invalidations, live
    # model metrics) before Redis counts as unreachable for that call.
    redis_timeout: float = Field(default=0.5, gt=0, le=30)
    # Rate limits while Redis is unreachable (docs/deploy.md): "open" admits requests without the
    # per-key limits (counted in /metrics, logged); "closed" refuses them with 503 + Retry-After.
    redis_failure_policy: Literal["open", "closed"] = "open"
    # Default per-key rate limits (requests / tokens per minute; 0 = unlimited), and overrides by
    # key prefix: MODELGATE_RATE_LIMITS='{"a1b2c3d4": {"rpm": 600, "tpm": 200000}}'.
    rate_limit_rpm: int = 0
    rate_limit_tpm: int = 0
    rate_limits: dict[str, dict[str, int]] = Field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Warm each provider up at start-up (the embedded chat model's worker starts and loads its
    # model), so that the first request to it does not wait; false: on the first call that needs it
    # (a faster start, and no worker where the local models go unused; the test suite runs so).
    warm_up: bool = True
    # Credits given to the admin account created on the first start of an empty database.
    bootstrap_credits_usd: float = 10.0
    # Print the bootstrap key on first start (disable for unattended deployments).
    bootstrap: bool = True
    # Whether signed-in people may create team organisations on /app/projects (they become the
    # owner); off: only operators create them (console, `modelgate admin create-org`).
    org_self_service: bool = True
    # Credits (USD) a new web sign-up receives, and the text the billing page shows on how to get
    # credits. Defaults: an operator changes both on /admin/settings (stored in the database).
    signup_credits_usd: float = Field(default=0.0, ge=0, le=1_000_000)
    credits_help: str = ""
    log_level: str = "info"
    # Seconds a request waits for an unreachable database (connecting, reading its key, holding its
    # credits) before it is answered 503 with Retry-After (docs/deploy.md).
    database_timeout: float = Field(default=5.0, gt=0, le=300)
    # Slow or idle clients (docs/deploy.md): seconds a connection may take to send a request's
    # headers (also the longest a new or kept-alive connection stays idle), seconds a request may
    # take to send its body, and the open connections one worker accepts (beyond: 503).
    http_header_timeout: float = Field(default=10.0, gt=0, le=3600)
    http_body_timeout: float = Field(default=60.0, gt=0, le=3600)
    max_connections: int = Field(default=1000, ge=1)
    # Stopping (SIGTERM, docs/deploy.md "Draining and rolling restarts"): /ready says "draining" at
    # once; after drain_notice seconds the worker stops accepting; requests and streams in flight get
    # drain_timeout seconds to finish; those still running are then cancelled (as is everything at a
    # second signal) and get shutdown_timeout seconds to settle for what they produced and be logged;
    # then the writers are flushed and the worker exits.
    drain_notice: float = Field(default=0.0, ge=0, le=3600)
    drain_timeout: int = Field(default=600, ge=0, le=86400)
    shutdown_timeout: int = Field(default=5, ge=0, le=3600)
    # Browser origins allowed by CORS ("*" by default, as a public API).
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    # The largest request body any endpoint reads (413 beyond it, refused while reading).
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # Seconds a cached API-key lookup is trusted before it is re-read (disable/delete invalidate at once).
    key_cache_ttl: float = 30.0
    # Request logs are written in batches off the hot path.
    log_flush_interval: float = 0.2
    log_batch_size: int = 500
    # GET /models/metrics: the sliding window of its percentiles, in seconds (shared through Redis).
    model_metrics_window: int = Field(default=300, ge=10, le=86400)
    # Holds (docs/accounts-and-billing.md): those of a process that is gone are released by any other
    # process within ``hold_sweep_interval`` seconds; any hold older than ``hold_timeout`` seconds
    # (past every request's deadline) is released even if its process still runs.
    hold_sweep_interval: float = 5.0
    # The output hold (docs/pricing.md "Holds"): once an account has answers on a model, its output
    # is held at twice the longest of its last 16 answers, at least this many tokens per choice (at
    # most max_tokens); the whole output is charged (the overdraft rule). 0: all of max_tokens.
    hold_output_tokens: int = Field(default=1024, ge=0, le=2**31 - 1)
    hold_timeout: float = 3600.0
    # Riding out a PostgreSQL outage (docs/deploy.md): each instance leases this many seconds of each
    # active key's spend (at most ``lease_fraction`` of the room left) and, while the database is
    # unreachable, admits requests on that room, journaling their charges in ``outage_journal`` (a
    # folder on local disk, one file per process; default: <tmp>/modelgate-journal/<database>).
    # 0: off (a request then gets 503 during an outage).
    lease_seconds: float = Field(default=0.0, ge=0, le=86400)
    lease_fraction: float = Field(default=0.25, gt=0, le=1)
    outage_journal: Path | None = None
    # PostgreSQL: wait for each ledger batch's commit to be flushed to disk before answering
    # (docs/deploy.md: off by default; the crash window of a database-server crash).
    ledger_synchronous_commit: bool = False
    # Responses API (POST /v1/responses with store: true): days a stored response and its items are
    # kept for previous_response_id, retrieval and input_items; 0 stores nothing.
    responses_retention_days: float = Field(default=30.0, ge=0)
    # The response cache (docs/cache.md): the mode when neither the request's x-modelgate-cache header
    # nor the key says; seconds an entry lives (x-modelgate-cache-ttl overrides); what a hit costs,
    # as a percentage of what the answer cost (0: free); the cosine similarity a semantic hit needs;
    # the catalogue embedding model of semantic lookups.
    cache_mode: Literal["off", "exact", "semantic"] = "off"
    cache_ttl: int = Field(default=3600, ge=1, le=30 * 86400)
    cache_hit_percent: float = Field(default=0.0, ge=0, le=100)
    cache_similarity: float = Field(default=0.9, gt=0, le=1)
    cache_embedding_model: str = "local/all-minilm-l6-v2"
    # Traces (docs/observability.md; the exporter itself is configured by the OTEL_* variables):
    # record the request's turns on its span (gen_ai.input.messages). Off: no prompt is ever recorded.
    trace_content: bool = False
    # Body logging (docs/observability.md): the defaults of the console's settings (Console >
    # Settings overrides them at run time): store each request's prompt and final answer (off), for
    # how many days (0 keeps nothing), each text cut at this many bytes (marked as truncated).
    body_logging: bool = False
    body_retention_days: float = Field(default=7.0, ge=0, le=3650)
    body_max_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)
    # Secret used to sign web sessions; generated and stored in the database when unset.
    secret_key: str | None = None
    # Behind TLS: mark cookies Secure.
    secure_cookies: bool = False
    # Single sign-on (docs/identity.md): OpenID providers as JSON, e.g. MODELGATE_OIDC_PROVIDERS=
    # '[{"name": "okta", "label": "Okta", "issuer": "https://acme.okta.com", "client_id": "...",
    # "client_secret": "..."}]'; the public URL of this gateway (the redirect URIs are
    # {public_url}/app/sso/{name}/callback); email domains whose accounts must sign in through a
    # provider (their passwords are refused, operators excepted: break-glass access).
    oidc_providers: list[OIDCProvider] = Field(default_factory=list)
    public_url: str | None = None
    sso_only_domains: list[str] = Field(default_factory=list)
    # Groups claim -> operator flag / project memberships, re-evaluated at every sign-in.
    group_rules: list[GroupRule] = Field(default_factory=list)
    # SCIM 2.0 provisioning at /scim/v2 (docs/identity.md): the bearer token the identity provider
    # sends; unset, SCIM is off.
    scim_token: SecretStr | None = None
    # Outgoing mail (docs/configuration.md "Mail"): unset smtp_host sends nothing (the operator hands
    # out password-reset links from the console instead). smtp_security: "starttls" (upgrade a plain
    # connection, port 587), "tls" (TLS from the start, port 465) or "none" (a local relay).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=10.0, gt=0, le=300)
    # A CA bundle (PEM) to trust for the SMTP server's certificate besides the system's (a private relay).
    smtp_ca_file: Path | None = None
    mail_from: str = "modelgate <modelgate@localhost>"
    # Links in mails start with public_url (above); unset: the address of the request that caused
    # the mail (alerts: http://host:port).
    # Alert mails: an account whose balance falls below low_balance_usd is told once per top-up (0:
    # never); a key past budget_alert_percent of its spending limit, once per limit period. Checked
    # every alert_interval seconds, off the request path.
    low_balance_usd: float = Field(default=1.0, ge=0, le=1_000_000)
    budget_alert_percent: int = Field(default=80, ge=1, le=100)
    alert_interval: float = Field(default=60.0, ge=1, le=86400)
    # Spend alerts (docs/organisations.md "Spend alerts"): every spend_alert_interval seconds each
    # instance raises the budget thresholds crossed (once across instances) and posts the webhook
    # deliveries due, off the request path. A delivery is tried webhook_max_attempts times, waiting
    # webhook_retry_base seconds x 6^(n-1) (at most 10 hours) after the n-th failure, each try
    # cut at webhook_timeout. webhook_refuse_private: refuse webhook URLs whose host is (or resolves
    # to) a loopback, private, link-local or otherwise non-public address (SSRF), when set and when sent.
    spend_alert_interval: float = Field(default=10.0, ge=0.05, le=86400)
    webhook_timeout: float = Field(default=10.0, gt=0, le=120)
    webhook_max_attempts: int = Field(default=6, ge=1, le=20)
    webhook_retry_base: float = Field(default=5.0, ge=0.01, le=3600)
    webhook_refuse_private: bool = False
    # Seconds between each instance's checks of the catalogue version (providers and models added on
    # the console, docs/web.md): an edit is live everywhere within this long, without a restart.
    catalog_poll_interval: float = Field(default=5.0, ge=0.05, le=3600)


def sqlalchemy_url(url: str) -> str:
    """Map a plain database URL to the async driver used internally."""
    if url.startswith("sqlite:///") or url == "sqlite://":
        return (
            "sqlite+aiosqlite://" + url[len("sqlite:") + 2 :] if url != "sqlite://" else "sqlite+aiosqlite://"
        )
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (so its folder can be created), or None."""
    for prefix in ("sqlite:///", "sqlite+aiosqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            return Path(rest) if rest and rest != ":memory:" else None
    return None
