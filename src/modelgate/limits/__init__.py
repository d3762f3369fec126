"""Per-key rate limits and key-invalidation fan-out: in memory (one instance) or Redis (many)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from modelgate.limits.base import Decision, Limiter, RateLimit
from modelgate.limits.memory import InMemoryLimiter

__all__ = [
    "Decision",
    "InMemoryLimiter",
    "Limiter",
    "RateLimit",
    "build_limiter",
    "limits_resolver",
    "share_invalidations",
]


def build_limiter(redis_url: str | None, *, prefix: str = "modelgate:") -> Limiter:
    if redis_url:
        from modelgate.limits.redis import RedisLimiter

        return RedisLimiter(redis_url, prefix=prefix)
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
    """Make ``keys.invalidate(...)`` reach every instance through ``limiter``.

    Callers (key endpoints, web pages) keep calling ``keys.invalidate(key_id=...)``: this instance
    drops the key at once and the message is published; other instances receive it and call the
    original, local ``invalidate``. With the in-memory limiter this is a plain local call.
    """
    local = keys.invalidate
    pending: set[asyncio.Task[None]] = set()
    await limiter.start(local)

    def invalidate(*, digest: str | None = None, key_id: int | None = None) -> None:
        local(digest=digest, key_id=key_id)
        if limiter.name == "memory":
            return
        task = asyncio.get_running_loop().create_task(
            limiter.publish_invalidation(key_id=key_id, digest=digest)
        )
        pending.add(task)
        task.add_done_callback(pending.discard)

    keys.invalidate = invalidate
