"""The live model figures: the sketch's accuracy and bound, the sliding window, and sharing through
a real Redis between two recorders (as two instances do)."""

from __future__ import annotations

import random
import secrets
from collections.abc import AsyncIterator

import pytest

from modelgate.observability import sketch
from modelgate.observability.model_metrics import BUCKETS, ModelMetrics
from tests.conftest import REDIS_URL, redis_available


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, -(-int(q * 1000) * len(ordered) // 1000)) - 1]


def test_sketch_quantiles_are_within_two_percent_and_bins_are_bounded():
    rng = random.Random(7)
    values = [rng.lognormvariate(6, 1.2) for _ in range(20_000)]
    bins: dict[int, int] = {}
    for v in values:
        sketch.merge(bins, {sketch.bin_of(v): 1})
    got = sketch.quantiles(bins)
    for name, q in sketch.QUANTILES:
        truth = exact(values, q)
        assert abs(got[name] - truth) / truth <= 0.02, (name, got[name], truth)
    assert got["p50"] <= got["p75"] <= got["p90"] <= got["p99"]
    wild = [0.0, -5.0, float("nan"), float("inf"), 1e-9, 1e30, *(10**e for e in range(-3, 9))]
    assert len({sketch.bin_of(v) for v in wild}) <= sketch.MAX_BINS
    assert sketch.quantiles({}) == {}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_window_slides_and_only_known_models_are_kept():
    clock = Clock()
    mm = ModelMetrics(known_models=["a/chat", "b/emb"], window_seconds=100, clock=clock)
    for ms in (100, 200, 300, 400):
        mm.observe("a/chat", seconds=ms / 1000, ttft=ms / 4000, output_tokens=100)
    mm.observe("b/emb", seconds=0.05, ttft=None, output_tokens=0)
    mm.observe("ghost/model", seconds=1.0, ttft=None, output_tokens=1)
    mm.observe("b/emb", seconds=float("nan"), ttft=None, output_tokens=0)
    snap = await mm.snapshot()
    assert set(snap) == {"a/chat", "b/emb"}
    chat = snap["a/chat"]
    assert set(chat) == {"ttft_ms", "tps", "duration_ms"}
    assert chat["duration_ms"]["p50"] == pytest.approx(200, rel=0.02)
    assert chat["duration_ms"]["p99"] == pytest.approx(400, rel=0.02)
    assert chat["ttft_ms"]["p50"] == pytest.approx(50, rel=0.02)
    # tps = output tokens / (duration - ttft): 100 / 0.075 s ... 100 / 0.3 s
    assert chat["tps"]["p99"] == pytest.approx(100 / 0.075, rel=0.02)
    assert chat["tps"]["p50"] == pytest.approx(100 / 0.225, rel=0.02)  # higher is faster
    assert set(snap["b/emb"]) == {"duration_ms"}  # no tokens produced: no tps; no stream: no ttft
    assert await mm.snapshot({"b/emb"}) == {"b/emb": snap["b/emb"]}
    clock.now += 100 - 100 / BUCKETS  # still inside the window
    assert set(await mm.snapshot()) == {"a/chat", "b/emb"}
    clock.now += 100 / BUCKETS  # the bucket has left the window: no data, not zeros
    mm.observe("b/emb", seconds=0.01, ttft=None, output_tokens=0)
    assert set(await mm.snapshot()) == {"b/emb"}
    assert (await mm.snapshot())["b/emb"]["duration_ms"]["p50"] == pytest.approx(10, rel=0.02)


async def test_memory_stays_bounded_under_any_traffic():
    clock = Clock()
    mm = ModelMetrics(known_models=["m"], window_seconds=10, clock=clock)
    rng = random.Random(1)
    for i in range(30_000):
        clock.now += 0.01
        mm.observe(
            "m", seconds=rng.expovariate(1 / (1 + i % 50)), ttft=None, output_tokens=rng.randint(0, 999)
        )
    store = mm._local
    assert len(store) <= BUCKETS + 1
    assert all(len(bins) <= sketch.MAX_BINS for per in store.values() for bins in per.values())


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    from redis.asyncio import Redis

    prefix = f"mgtest:{secrets.token_hex(6)}:"
    yield prefix
    r = Redis.from_url(REDIS_URL)
    keys = [k async for k in r.scan_iter(match=prefix + "*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


async def test_two_recorders_share_the_window_through_redis(redis_prefix: str):
    known = ["a/chat", "b/emb"]
    one = ModelMetrics(known_models=known, redis_url=REDIS_URL, prefix=redis_prefix)
    two = ModelMetrics(known_models=known, redis_url=REDIS_URL, prefix=redis_prefix)
    try:
        one.observe("a/chat", seconds=0.1, ttft=None, output_tokens=10)
        two.observe("a/chat", seconds=0.3, ttft=None, output_tokens=10)
        two.observe("b/emb", seconds=0.02, ttft=None, output_tokens=0)
        await two.flush()
        snap = await one.snapshot()  # flushes its own counts first
        assert set(snap) == {"a/chat", "b/emb"}
        assert snap["a/chat"]["duration_ms"]["p50"] == pytest.approx(100, rel=0.02)
        assert snap["a/chat"]["duration_ms"]["p99"] == pytest.approx(300, rel=0.02)
        assert await two.snapshot() == snap
    finally:
        await one.aclose()
        await two.aclose()


async def test_redis_down_answers_from_this_instance():
    mm = ModelMetrics(known_models=["m"], redis_url="redis://127.0.0.1:9/0")
    try:
        mm.observe("m", seconds=0.2, ttft=None, output_tokens=0)
        snap = await mm.snapshot()
        assert snap["m"]["duration_ms"]["p50"] == pytest.approx(200, rel=0.02)
    finally:
        await mm.aclose()
