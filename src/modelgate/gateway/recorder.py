"""What a request leaves behind besides money: its log row, its metrics, and the per-key rate
limit (checked before the hold, corrected to the real token count after the call)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from modelgate.errors import RateLimitError, RateLimiterUnavailableError
from modelgate.gateway.metered import Caller
from modelgate.limits.base import Decision, Limiter, LimiterUnavailable, RateLimit
from modelgate.observability.model_metrics import ModelMetrics
from modelgate.observability.tracing import RequestTrace
from modelgate.providers.base import Usage
from modelgate.providers.checks import MAX_TOKEN_COUNT, finish_reason
from modelgate.sanitize import ERROR_TEXT_LIMIT, db_text
from modelgate.store.keys import KeyIdentity
from modelgate.store.log_sink import RequestLogSink

log = logging.getLogger("modelgate.gateway")

OUTAGE_LOG_EVERY = 10.0  # seconds between two log lines about one rate-limiter outage (fail-open)


@dataclass(slots=True)
class RequestMeta:
    """The core's own bookkeeping for one request (never shared with a door)."""

    caller: Caller
    started: float = field(default_factory=time.perf_counter)
    # Rate limiting (limits/): the window and token estimate counted, and the x-ratelimit-* headers.
    rate_window: int | None = None
    rate_tokens: int = 0
    rate_headers: dict[str, str] | None = None
    first_provider: str | None = None
    first_event: float | None = None  # perf_counter of the first streamed event (time to first token)
    cache: str | None = None  # the response cache's outcome: hit:exact, miss:semantic, ... (None: not asked)
    cache_saved: int = 0  # credits a cache hit saved
    trace: RequestTrace | None = None  # the request's span (observability/tracing.py), None: off
    attempts: int = 0  # routes tried (request detail)
    route: str | None = None  # the upstream model of the latest route tried


class RequestRecorder:
    def __init__(
        self,
        *,
        logsink: RequestLogSink,
        limiter: Limiter | None,
        limits_for: Callable[[KeyIdentity], RateLimit] | None,
        metrics: Any,
        spawn: Callable[[Any], Any],
        model_metrics: ModelMetrics | None = None,
        limiter_policy: str = "open",
    ) -> None:
        self.model_metrics = model_metrics  # GET /models/metrics: successful requests only
        self.logsink = logsink
        self.limiter = limiter
        self.limits_for = limits_for
        self.metrics = metrics
        self._spawn = spawn
        # While the limiter is unreachable: "open" admits without limits, "closed" refuses (503).
        self.limiter_policy = limiter_policy
        self._outage: _Outage | None = None

    async def check_rate_limit(self, ident: KeyIdentity, meta: RequestMeta, *, tokens: int) -> None:
        """Per-key requests/tokens per minute (limits/), then the key's project's (counted under the
        project's negated id, beside the keys' counters): 429 with Retry-After when over."""
        if self.limiter is None or self.limits_for is None:
            return
        limits = self.limits_for(ident)
        if limits.enabled:
            decision = await self._acquire(ident.key_id, limits, tokens, meta, "this API key")
            if decision is not None and limits.tpm:
                meta.rate_window, meta.rate_tokens = decision.window, tokens
        if ident.project_id is not None and (ident.project_rpm or ident.project_tpm):
            project = RateLimit(rpm=ident.project_rpm, tpm=ident.project_tpm)
            await self._acquire(-ident.project_id, project, tokens, meta, "this project")

    async def _acquire(
        self, bucket: int, limits: RateLimit, tokens: int, meta: RequestMeta, whose: str
    ) -> Decision | None:
        assert self.limiter is not None
        try:
            decision = await self.limiter.acquire(bucket, limits, tokens=tokens if limits.tpm else 0)
        except LimiterUnavailable as exc:
            self._limiter_down(exc)
            return None
        if self._outage is not None:
            log.warning(
                "rate limiter reachable again after %.1fs (%d requests met it unreachable)",
                time.monotonic() - self._outage.since,
                self._outage.count,
            )
            self._outage = None
        meta.rate_headers = decision.headers()
        if not decision.allowed:
            if self.metrics is not None:
                self.metrics.rate_limited.inc((decision.refused_by or "requests",))
            what = "requests" if decision.refused_by == "requests" else "tokens"
            limit = decision.limit_requests if what == "requests" else decision.limit_tokens
            raise RateLimitError(
                f"Rate limit reached for {whose}: {limit} {what} per minute. "
                f"Retry after {meta.rate_headers['Retry-After']}s.",
                retry_after=decision.retry_after,
                headers=dict(meta.rate_headers),
            )
        return decision

    def _limiter_down(self, exc: LimiterUnavailable) -> None:
        """Apply the policy to a request whose limits could not be checked: admit it (``open``,
        counted and logged at most every ``OUTAGE_LOG_EVERY`` seconds) or refuse it with 503
        (``closed``; the core logs the refused request like any other)."""
        closed = self.limiter_policy == "closed"
        if self.metrics is not None:
            self.metrics.limiter_unavailable.inc(("closed" if closed else "open",))
        now = time.monotonic()
        outage = self._outage
        if outage is None:
            outage = self._outage = _Outage(since=now, logged=now - OUTAGE_LOG_EVERY)
        outage.count += 1
        if now - outage.logged >= OUTAGE_LOG_EVERY:
            outage.logged = now
            log.warning(
                "rate limiter unreachable (%s) for %.1fs: %d requests %s so far (redis_failure_policy=%s)",
                exc,
                now - outage.since,
                outage.count,
                "refused with 503" if closed else "admitted without per-key limits",
                self.limiter_policy,
            )
        if closed:
            raise RateLimiterUnavailableError(
                "Rate limits cannot be checked right now (the rate limiter is unreachable); "
                "please retry shortly.",
                retry_after=1,
            )

    async def _adjust_tokens(self, key_id: int, window: int, delta: int) -> None:
        assert self.limiter is not None
        try:
            await self.limiter.adjust_tokens(key_id, window, delta)
        except LimiterUnavailable as exc:
            log.debug("could not correct the token count of key %s: %s", key_id, exc)
        except Exception:
            log.warning("could not correct the token count of key %s", key_id, exc_info=True)

    def record(
        self,
        *,
        model: str,
        meta: RequestMeta,
        provider: str | None,
        usage: Usage,
        credits: int,
        finish: str | None,
        stream: bool,
        http_status: int = 200,
        error: str | None = None,
        ttft: float | None = None,  # seconds to the first streamed event (streams only)
        tier: int = 0,
        overage: int = 0,  # credits charged beyond the hold (the overdraft rule)
    ) -> None:
        if meta.trace is not None:  # the request's span ends with its log row
            trace, meta.trace = meta.trace, None
            trace.finish(
                model=model,
                provider=provider,
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                credits=credits,
                finish=finish,
                cache=meta.cache,
                status=http_status,
                error=error,
            )
        # Metrics and the token-limit correction, once per request.
        caller = meta.caller
        ident = caller.ident
        elapsed = time.perf_counter() - meta.started
        if self.metrics is not None:
            self.metrics.request_done(
                model=model if provider is not None else "unrouted",
                provider=provider,
                status=http_status,
                stream=stream,
                seconds=elapsed,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                credits=credits,
                fallback=meta.first_provider is not None
                and provider not in (None, meta.first_provider, "cache"),
            )
        if meta.cache_saved and self.metrics is not None:
            self.metrics.cache_saved.inc((model,), meta.cache_saved)
        if overage > 0:
            log.info(
                "request %s cost %d credits more than its hold (overdraft rule)", caller.inference_id, overage
            )
            if self.metrics is not None:
                self.metrics.overage.inc((model,), overage)
                self.metrics.overage_requests.inc((model,))
        if ttft is None and meta.first_event is not None:
            ttft = meta.first_event - meta.started
        if self.model_metrics is not None and error is None and http_status == 200:
            self.model_metrics.observe(
                model,
                seconds=elapsed,
                ttft=ttft,
                output_tokens=usage.completion_tokens,
            )
        if meta.rate_window is not None and self.limiter is not None:
            delta = usage.prompt_tokens + usage.completion_tokens - meta.rate_tokens
            window, meta.rate_window = meta.rate_window, None
            if delta:
                self._spawn(self._adjust_tokens(ident.key_id, window, delta))
        # Every value is bounded to what its column holds (store/schema.py), so that no request's
        # row can be refused by the database (see sanitize.py and providers/checks.py).
        self.logsink.record(
            {
                "inference_id": caller.inference_id,
                "account_id": ident.account_id,
                "key_id": ident.key_id,
                "key_prefix": ident.prefix,
                "model": db_text(model, 200),
                "provider": db_text(provider, 100),
                "status": "success" if error is None else "error",
                "http_status": _bounded(http_status, 999),
                "origin": db_text(caller.origin, 16),
                "door": db_text(caller.door, 16),
                "stream": stream,
                "prompt_tokens": _bounded(usage.prompt_tokens, MAX_TOKEN_COUNT),
                "completion_tokens": _bounded(usage.completion_tokens, MAX_TOKEN_COUNT),
                "reasoning_tokens": _bounded(usage.reasoning_tokens, MAX_TOKEN_COUNT),
                "cached_tokens": _bounded(usage.cached_tokens, MAX_TOKEN_COUNT),
                # counts checked at the provider boundary (non-negative); sums of them clamped
                "cache_write_5m_tokens": min(usage.cache_write_5m_tokens, MAX_TOKEN_COUNT),
                "cache_write_1h_tokens": min(usage.cache_write_1h_tokens, MAX_TOKEN_COUNT),
                "audio_tokens": min(usage.audio_input_tokens + usage.audio_output_tokens, MAX_TOKEN_COUNT),
                "tier": tier,
                "uses": _uses_json(usage.uses) if usage.uses else None,
                "overage_credits": min(overage, MAX_CREDITS) if overage > 0 else 0,
                "credits": _bounded(credits, MAX_CREDITS),
                "finish_reason": log_finish_reason(finish),
                "client_request_id": db_text(caller.client_request_id, 128),
                "error_message": db_text(error, ERROR_TEXT_LIMIT),
                "latency_ms": _bounded(int(elapsed * 1000), MAX_TOKEN_COUNT),
                "cache": meta.cache,
                "cache_saved_credits": _bounded(meta.cache_saved, MAX_CREDITS),
                "ttft_ms": _bounded(int(ttft * 1000), MAX_TOKEN_COUNT) if ttft is not None else None,
                "attempts": meta.attempts or None,
                "route": db_text(meta.route, 200),
                "created_at": datetime.now(UTC),
            }
        )


@dataclass(slots=True)
class _Outage:
    """One stretch of time during which the rate limiter was unreachable."""

    since: float
    logged: float
    count: int = 0


MAX_CREDITS = 2**63 - 1
_LOG_FINISH = frozenset({"client_disconnected"})


def _uses_json(uses: dict[str, int] | None) -> str | None:
    """Per-use counts and units as a small JSON object (names bounded, positive counts only)."""
    if not uses:
        return None
    kept = {db_text(k, 64): _bounded(v, MAX_TOKEN_COUNT) for k, v in sorted(uses.items())[:16] if v > 0}
    return orjson.dumps(kept).decode() if kept else None


def _bounded(value: int, high: int) -> int:
    """An integer column's value, clamped (the counts were checked at the provider boundary; this
    only guards the database against a new code path that forgot to)."""
    if value.__class__ is int and 0 <= value <= high:
        return value
    return min(max(int(value), 0), high)


def log_finish_reason(finish: str | None) -> str | None:
    """A documented finish reason, or one of the gateway's own (``client_disconnected``)."""
    if finish is None or finish in _LOG_FINISH:
        return finish
    return finish_reason(finish, default=None)
