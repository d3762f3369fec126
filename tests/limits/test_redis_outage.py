"""The Redis limiter against a Redis that is cut (refused and reset) or frozen (silent): every call
is bounded by ``timeout`` and says ``LimiterUnavailable``; revocation still drops the key here and
returns; everything works again once Redis is back. Before: ``acquire`` raised the driver's
ConnectionRefusedError, and hung when Redis was frozen."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelgate.limits import LimiterUnavailable, RateLimit
from modelgate.observability.model_metrics import ModelMetrics
from tests.fakes.chaos_proxy import ChaosProxy
from tests.limits.test_limiters import REDIS_URL
from tests.outages.conftest import target_port, through_proxy

BOUND = 0.2
SAFETY = 5.0  # far above the bound: a call still running this long was not bounded at all


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[Any, ChaosProxy]]:
    from modelgate.limits.redis import RedisLimiter

    proxy = ChaosProxy(target_port(REDIS_URL, 6379))
    limiter = RedisLimiter(
        through_proxy(REDIS_URL, proxy), prefix=f"mgtest:{secrets.token_hex(4)}:", timeout=BOUND
    )
    if not await limiter.ping():
        proxy.close()
        pytest.skip("no Redis at " + REDIS_URL)
    yield limiter, proxy
    proxy.restore()
    await limiter.aclose()
    proxy.close()


@pytest.mark.parametrize("failure", ["kill", "freeze"])
async def test_every_call_is_bounded_and_recovers(proxied: tuple[Any, ChaosProxy], failure: str) -> None:
    limiter, proxy = proxied
    forgotten: list[dict[str, Any]] = []
    await limiter.start(lambda **kw: forgotten.append(kw))
    limits = RateLimit(rpm=100, tpm=1000)
    assert (await limiter.acquire(1, limits, tokens=10)).allowed
    await asyncio.to_thread(getattr(proxy, failure))
    for _ in range(3):
        with pytest.raises(LimiterUnavailable):
            await asyncio.wait_for(limiter.acquire(1, limits, tokens=10), SAFETY)
    with pytest.raises(LimiterUnavailable):
        await asyncio.wait_for(limiter.adjust_tokens(1, 0, -5), SAFETY)
    # Revoking a key: dropped here at once, and the call returns (logged) instead of failing.
    await asyncio.wait_for(limiter.publish_invalidation(key_id=7), SAFETY)
    assert {"key_id": 7, "digest": None} in forgotten
    assert not await asyncio.wait_for(limiter.ping(), SAFETY)
    await asyncio.to_thread(proxy.restore)

    async def back() -> None:
        while True:
            try:
                if (await limiter.acquire(1, limits, tokens=10)).allowed:
                    return
            except LimiterUnavailable:
                await asyncio.sleep(0.05)

    await asyncio.wait_for(back(), 30)


@pytest.mark.parametrize("failure", ["kill", "freeze"])
async def test_model_metrics_answer_from_this_instance(failure: str) -> None:
    proxy = ChaosProxy(target_port(REDIS_URL, 6379))
    live = ModelMetrics(
        known_models=["m"],
        redis_url=through_proxy(REDIS_URL, proxy),
        prefix=f"mgtest:{secrets.token_hex(4)}:",
        redis_timeout=BOUND,
    )
    try:
        live.observe("m", seconds=0.5, ttft=None, output_tokens=10)
        await asyncio.to_thread(getattr(proxy, failure))
        figures = await asyncio.wait_for(live.snapshot(), SAFETY)
        assert figures["m"]["duration_ms"]["p50"] > 0
    finally:
        await asyncio.to_thread(proxy.restore)
        await live.aclose()
        proxy.close()
