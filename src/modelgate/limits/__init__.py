"""Per-key rate limits and key-invalidation fan-out: in memory (one instance) or Redis (many)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelgate.limits.base import Decision, Limiter, LimiterUnavailable, RateLimit
from modelgate.limits.memory import InMemoryLimiter

__all__ = [
    "Decision",
    "InMemoryLimiter",
    "Limiter",
    "LimiterUnavailable",
    "RateLimit",
    "build_limiter",
    "limits_resolver",
    "share_invalidations",
]


def build_limiter(redis_url: str | None, *, prefix: str = "modelgate:", timeout: float = 0.5) -> Limiter:
    if redis_url:
        from modelgate.limits.redis import RedisLimiter

        return RedisLimiter(redis_url, prefix=prefix, timeout=timeout)
    return InMemoryLimiter()


def limits_resolver(
    *, rpm: int, tpm: int, overrides: dict[str, dict[str, int]]
) -> Callable[[Any], RateLimit]:
    """Limits for a key: its own ``rpm``/``tpm`` when the key record has them, else an override by
    key prefix from the settings, else the defaults."""
    default = RateLimit(rpm=rpm or None, tpm=tpm or None)
    by_prefix = {
        p: RateLimit(rpm=v.get("rpm") or None, tpm=v.get("tpm") or None) for p, v in overrides.items()
    }

    def resolve(ident: Any) -> RateLimit:
        own_rpm, own_tpm = getattr(ident, "rpm", None), getattr(ident, "tpm", None)
        if own_rpm is not None or own_tpm is not None:
            return RateLimit(rpm=own_rpm, tpm=own_tpm)
        return by_prefix.get(ident.prefix, default)

    return resolve


async def share_invalidations(keys: Any, limiter: Limiter) -> None:
    """Make key invalidations reach every instance through ``limiter``.

    ``await keys.revoke(key_id=...)`` (key endpoints, web pages) drops the key on this instance, then
    publishes it and returns once every instance acknowledged it; ``keys.invalidate`` does the same
    in the background. Deliveries call ``keys.forget`` on each instance; an instance whose channel
    was lost forgets its whole cache when it subscribes again (it may have missed some). With the
    in-memory limiter (one instance) revoking is local.
    """
    await limiter.start(keys.forget, reset=keys.clear)
    if limiter.name != "memory":
        keys.fanout = limiter.publish_invalidation
