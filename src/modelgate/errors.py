"""The one error hierarchy of modelgate, and nothing else.

Every failure a client can see is a ``GatewayError``; the HTTP layer renders any of them as the
documented envelope (``httpkit/errors.py``). Adapters translate upstream failures into ``UpstreamError``
subclasses at their boundary, with ``raise ... from exc``.

    GatewayError (500, internal_error)
    ├── InvalidRequestError (400, invalid_request_error)   body/query validation, impossible options
    ├── AuthenticationError (401, authentication_error)    missing, unknown or disabled key
    ├── PermissionDeniedError (403, permission_error)      scope missing, management-only
    │   ├── InsufficientCreditsError (403)                 balance cannot cover the hold
    │   └── SpendLimitError (403)                          key over its period limit
    ├── NotFoundError (404, not_found_error)               unknown model, key, route
    ├── ConflictError (409, conflict_error)
    ├── RateLimitError (429, rate_limit_error)             local queue full, per-key limits
    ├── ProviderNotConfiguredError (503, service_unavailable)
    ├── DatabaseUnavailableError (503, service_unavailable) the database is unreachable; Retry-After
    ├── RateLimiterUnavailableError (503)                 Redis unreachable, policy closed; Retry-After
    └── UpstreamError (502, upstream_error)                anything that went wrong past our boundary
        ├── UpstreamStatusError (status of upstream)       upstream answered an HTTP error
        ├── UpstreamConnectionError (502)                  refused, reset, DNS
        ├── UpstreamTimeoutError (504)                     connect / first byte / total
        ├── UpstreamProtocolError (502)                    malformed body or stream, invalid usage
        ├── WorkerCrashedError (502, never retried)        an embedded model's worker process died
        └── ProviderSkippedError (503, or 429)             circuit breaker open; Retry-After set

``retryable`` tells the router whether another route may be tried (connect errors, timeouts,
429, 5xx, 529); errors caused by the request itself are never retried.
"""

from __future__ import annotations

import math


class GatewayError(Exception):
    status_code: int = 500
    error_type: str = "internal_error"
    default_code: str | None = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}


class InvalidRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(GatewayError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status_code = 403
    error_type = "permission_error"


class InsufficientCreditsError(PermissionDeniedError):
    default_code = "insufficient_credits"


class SpendLimitError(PermissionDeniedError):
    default_code = "key_limit_exceeded"


# How every spend-limit refusal begins (billing/ledger.py writes it; the Keys page finds the
# refusals in the request logs by it).
SPEND_LIMIT_REACHED = "Spending limit reached for this API key"


class NotFoundError(GatewayError):
    status_code = 404
    error_type = "not_found_error"


class ConflictError(GatewayError):
    status_code = 409
    error_type = "conflict_error"


class RateLimitError(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: object) -> None:
        headers = dict(kw.pop("headers", None) or {})  # type: ignore[call-overload]
        headers.setdefault("Retry-After", str(max(1, round(retry_after))))
        super().__init__(message, headers=headers, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ProviderNotConfiguredError(GatewayError):
    status_code = 503
    error_type = "service_unavailable"
    default_code = "provider_not_configured"


class DatabaseUnavailableError(GatewayError):
    """The ledger's database cannot be reached (a hold cannot be taken)."""

    status_code = 503
    error_type = "service_unavailable"
    default_code = "database_unavailable"

    def __init__(self, message: str, **kw: object) -> None:
        headers = dict(kw.pop("headers", None) or {})  # type: ignore[call-overload]
        headers.setdefault("Retry-After", "5")
        super().__init__(message, headers=headers, **kw)  # type: ignore[arg-type]


class RateLimiterUnavailableError(GatewayError):
    """Per-key rate limits are configured, their shared state (Redis) is unreachable and the
    operator chose to refuse requests meanwhile (``redis_failure_policy = "closed"``)."""

    status_code = 503
    error_type = "service_unavailable"
    default_code = "rate_limiter_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class UpstreamError(GatewayError):
    status_code = 502
    error_type = "upstream_error"
    retryable = True

    def __init__(self, message: str, *, provider: str | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.provider = provider


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an HTTP error status; we answer with the same class of status."""

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        provider: str | None = None,
        retry_after: float | None = None,
        **kw: object,
    ) -> None:
        super().__init__(message, provider=provider, **kw)
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        # The upstream's own error type and wording (sanitised: ``providers/http.py``), when known;
        # only a door that passes the upstream's dialect through shows them to its clients.
        self.upstream_type: str | None = None
        self.upstream_message: str | None = None
        self.retryable = upstream_status in (408, 429) or upstream_status >= 500
        self.status_code, self.error_type = _status_for_upstream(upstream_status)
        if retry_after is not None and self.status_code in (429, 503):
            self.headers.setdefault("Retry-After", str(max(1, math.ceil(retry_after))))


def _status_for_upstream(status: int) -> tuple[int, str]:
    if status == 400 or status == 422:
        return 400, "invalid_request_error"
    if status in (401, 403):
        # The operator's upstream credentials are wrong: not the client's fault.
        return 502, "upstream_error"
    if status == 404:
        return 404, "not_found_error"
    if status == 413:
        return 400, "invalid_request_error"
    if status == 429:
        return 429, "rate_limit_error"
    if status == 529:
        return 503, "service_unavailable"
    if status in (503, 504):
        return status, "service_unavailable" if status == 503 else "upstream_error"
    if status >= 500:
        return 502, "upstream_error"
    return 502, "upstream_error"


class UpstreamConnectionError(UpstreamError):
    pass


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    default_code = "upstream_timeout"


class UpstreamProtocolError(UpstreamError):
    default_code = "upstream_protocol_error"


class WorkerCrashedError(UpstreamError):
    """The worker process of an embedded model died (a native crash, killed, out of memory) while
    this request was in flight. Never retried: the request itself may have caused it."""

    default_code = "worker_crashed"
    retryable = False


class ProviderSkippedError(UpstreamError):
    """A provider skipped because its circuit breaker is open: 503 with ``Retry-After`` (the
    seconds until it is tried again), or 429 when the breaker opened on the upstream's 429s."""

    status_code = 503
    error_type = "service_unavailable"
    default_code = "circuit_open"

    def __init__(
        self, message: str, *, provider: str, retry_after: float, rate_limited: bool = False
    ) -> None:
        super().__init__(
            message, provider=provider, headers={"Retry-After": str(max(1, math.ceil(retry_after)))}
        )
        self.retry_after = retry_after
        if rate_limited:
            self.status_code, self.error_type = 429, "rate_limit_error"
