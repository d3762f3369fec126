"""Both limiters against the same contract: atomic admission, 429 data, token correction, fan-out."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest

from modelgate.limits import InMemoryLimiter, RateLimit, limits_resolver
from modelgate.limits.base import wait_for_room

REDIS_URL = os.environ.get("MODELGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[object]:
    if request.param == "memory":
        lim: object = InMemoryLimiter()
        yield lim
        return
    from modelgate.limits.redis import RedisLimiter

    prefix = f"mgtest:{secrets.token_hex(4)}:"
    lim = RedisLimiter(REDIS_URL, prefix=prefix)
    if not await lim.ping():
        pytest.skip("no Redis at " + REDIS_URL)
    yield lim
    keys = [k async for k in lim._redis.scan_iter(match=prefix + "*")]
    if keys:
        await lim._redis.delete(*keys)
    await lim.aclose()


async def test_requests_per_minute(limiter: InMemoryLimiter) -> None:
    limits = RateLimit(rpm=3)
    results = await asyncio.gather(*(limiter.acquire(7, limits, tokens=0) for _ in range(5)))
    assert sum(d.allowed for d in results) == 3
    refused = next(d for d in results if not d.allowed)
    h = refused.headers()
    assert h["x-ratelimit-limit-requests"] == "3"
    assert h["x-ratelimit-remaining-requests"] == "0"
    assert int(h["Retry-After"]) >= 1
    assert refused.refused_by == "requests"
    ok = next(d for d in results if d.allowed).headers()
    assert "Retry-After" not in ok
    # another key has its own budget
    assert (await limiter.acquire(8, limits, tokens=0)).allowed


async def test_tokens_per_minute_and_correction(limiter: InMemoryLimiter) -> None:
    limits = RateLimit(tpm=100)
    first = await limiter.acquire(9, limits, tokens=60)
    assert first.allowed and first.remaining_tokens == 40
    second = await limiter.acquire(9, limits, tokens=60)
    assert not second.allowed and second.refused_by == "tokens"
    # the first call really used 10 tokens: give back the other 50
    await limiter.adjust_tokens(9, first.window, -50)
    assert (await limiter.acquire(9, limits, tokens=60)).allowed
    # a single request larger than the whole limit is refused
    assert not (await limiter.acquire(10, limits, tokens=101)).allowed


async def test_memory_window_slides() -> None:
    now = [1_000_020.0]  # 20 s into a window
    lim = InMemoryLimiter(clock=lambda: now[0])
    limits = RateLimit(rpm=2)
    assert (await lim.acquire(1, limits, tokens=0)).allowed
    assert (await lim.acquire(1, limits, tokens=0)).allowed
    refused = await lim.acquire(1, limits, tokens=0)
    assert not refused.allowed and 0 < refused.retry_after <= 120
    now[0] += 60  # next window: the previous one still weighs (1 - 20/60) * 2 = 1.33
    assert not (await lim.acquire(1, limits, tokens=0)).allowed
    now[0] += 30  # 50 s in: 2 * (1 - 50/60) = 0.33 + 0 < 2 - 1
    assert (await lim.acquire(1, limits, tokens=0)).allowed


def test_wait_for_room() -> None:
    assert wait_for_room(10, 0, 5, 30, 1) == 0.0
    assert wait_for_room(10, 0, 10, 30, 1) == pytest.approx(30 + 6, abs=0.01)
    assert wait_for_room(10, 20, 0, 30, 1) == pytest.approx(60 * (1 - 9 / 20) - 30, abs=0.01)


async def test_invalidation_fan_out(limiter: InMemoryLimiter) -> None:
    seen: list[tuple[int | None, str | None]] = []

    def inv(*, key_id: int | None = None, digest: str | None = None) -> None:
        seen.append((key_id, digest))

    await limiter.start(inv)
    await limiter.publish_invalidation(key_id=42)
    for _ in range(50):
        if (42, None) in seen:
            break
        await asyncio.sleep(0.02)
    assert (42, None) in seen


def test_resolver_prefers_key_then_prefix_then_default() -> None:
    class Ident:
        prefix = "abcd1234"

    resolve = limits_resolver(rpm=60, tpm=0, overrides={"abcd1234": {"rpm": 5}})
    assert resolve(Ident()) == RateLimit(rpm=5)
    other = Ident()
    other.prefix = "zzzz0000"  # type: ignore[misc]
    assert resolve(other) == RateLimit(rpm=60)
    own = Ident()
    own.rpm, own.tpm = 7, 100  # type: ignore[attr-defined]
    assert resolve(own) == RateLimit(rpm=7, tpm=100)
