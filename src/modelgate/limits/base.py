"""Per-key rate limits (requests and tokens per minute) and key-invalidation fan-out.

One small Protocol, two implementations: ``memory.InMemoryLimiter`` (one instance, the default)
and ``redis.RedisLimiter`` (``MODELGATE_REDIS_URL``: limits are global across instances, and a key
disabled on one instance is refused by all of them within a second through pub/sub).

The algorithm is a sliding-window counter over 60 s windows: the estimate is
``previous_window * (1 - elapsed/60) + current_window``. A request is admitted only when the
estimate plus its cost stays within the limit, for requests (cost 1) and tokens (cost = the
prompt estimate + the output cap) together, in one atomic step; after the call the token charge
is corrected to the real usage (``adjust_tokens``), so long generous ``max_tokens`` do not eat
the budget for good.

Money is *not* kept here: balances and key spend limits stay exact in the database ledger
(guarded UPDATEs), which is already correct across instances.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Limits for one key; 0 or None means unlimited."""

    rpm: int | None = None
    tpm: int | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.rpm) or bool(self.tpm)


@dataclass(slots=True)
class Decision:
    allowed: bool
    limit_requests: int | None
    remaining_requests: int | None
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_requests: float  # seconds until the request estimate has room again (0 if it has)
    reset_tokens: float
    retry_after: float  # seconds, when refused
    refused_by: str | None = None  # "requests" | "tokens"
    window: int = 0  # the window the tokens were counted in (for adjust_tokens)

    def headers(self) -> dict[str, str]:
        """OpenAI-style ``x-ratelimit-*`` headers (and ``Retry-After`` when refused)."""
        h: dict[str, str] = {}
        if self.limit_requests:
            h["x-ratelimit-limit-requests"] = str(self.limit_requests)
            h["x-ratelimit-remaining-requests"] = str(max(0, self.remaining_requests or 0))
            h["x-ratelimit-reset-requests"] = _dur(self.reset_requests)
        if self.limit_tokens:
            h["x-ratelimit-limit-tokens"] = str(self.limit_tokens)
            h["x-ratelimit-remaining-tokens"] = str(max(0, self.remaining_tokens or 0))
            h["x-ratelimit-reset-tokens"] = _dur(self.reset_tokens)
        if not self.allowed:
            h["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return h


def _dur(seconds: float) -> str:
    return f"{max(0.0, seconds):.3f}s"


def wait_for_room(limit: int, prev: float, cur: float, elapsed: float, cost: int) -> float:
    """Seconds until ``prev*(1-e/60) + cur + cost <= limit`` (0 when it already holds)."""
    if cost > limit:
        return WINDOW  # never fits in one window; the caller refuses with a full window
    est = prev * (1 - elapsed / WINDOW) + cur
    if est + cost <= limit:
        return 0.0
    if cur + cost <= limit and prev > 0:
        # the previous window's share decays at prev/60 per second
        return max(0.0, WINDOW * (1 - (limit - cur - cost) / prev) - elapsed)
    rest = WINDOW - elapsed
    if cur <= limit - cost:
        return rest
    return rest + WINDOW * (1 - (limit - cost) / cur)


def decide(
    limits: RateLimit,
    *,
    now: float,
    req_prev: float,
    req_cur: float,
    tok_prev: float,
    tok_cur: float,
    tokens: int,
) -> Decision:
    """The pure decision both implementations share (Redis runs the same arithmetic in Lua)."""
    window = int(now // WINDOW)
    elapsed = now - window * WINDOW
    w = 1 - elapsed / WINDOW
    r_est = req_prev * w + req_cur
    t_est = tok_prev * w + tok_cur
    r_wait = wait_for_room(limits.rpm, req_prev, req_cur, elapsed, 1) if limits.rpm else 0.0
    t_wait = wait_for_room(limits.tpm, tok_prev, tok_cur, elapsed, tokens) if limits.tpm else 0.0
    allowed = r_wait == 0.0 and t_wait == 0.0
    refused_by = None if allowed else ("requests" if r_wait > 0 else "tokens")
    return Decision(
        allowed=allowed,
        limit_requests=limits.rpm or None,
        remaining_requests=int(limits.rpm - r_est - (1 if allowed else 0)) if limits.rpm else None,
        limit_tokens=limits.tpm or None,
        remaining_tokens=int(limits.tpm - t_est - (tokens if allowed else 0)) if limits.tpm else None,
        reset_requests=r_wait,
        reset_tokens=t_wait,
        retry_after=max(r_wait, t_wait),
        refused_by=refused_by,
        window=window,
    )


class LimiterUnavailable(Exception):
    """The shared limiter could not answer within its time bound (Redis unreachable or frozen).
    Not a client-facing error: the recorder applies the operator's policy (``redis_failure_policy``)."""


Invalidate = Callable[..., None]  # KeyAuthenticator.invalidate(*, digest=..., key_id=...)


class Limiter(Protocol):
    """Shared per-key state. Implementations must make ``acquire`` atomic for one key."""

    name: str

    async def acquire(self, key_id: int, limits: RateLimit, *, tokens: int) -> Decision:
        """Count one request and ``tokens`` tokens if both fit; otherwise count nothing. Raises
        ``LimiterUnavailable`` when the shared state cannot be reached in time."""
        ...

    async def adjust_tokens(self, key_id: int, window: int, delta: int) -> None:
        """Correct the token count of ``window`` by ``delta`` (real usage minus the estimate)."""
        ...

    async def publish_invalidation(self, *, key_id: int | None = None, digest: str | None = None) -> None:
        """Tell every instance (this one included) to drop a cached key; return once they did."""
        ...

    async def start(self, invalidate: Invalidate, *, reset: Callable[[], None] | None = None) -> None:
        """Begin delivering invalidations to ``invalidate``; ``reset`` when some may have been
        missed (the channel was lost)."""
        ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...
