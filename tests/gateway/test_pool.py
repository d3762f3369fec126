"""Pools (a model with ``balance``): each policy's distribution, per-deployment rpm/tpm, 429s moved to
another member without retrying it, an unhealthy member taken out and tried again later."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from modelgate.catalog.models import ModelSpec, Pricing, ProviderConfig, Route
from modelgate.catalog.prices import PriceSheet
from modelgate.catalog.registry import Catalog
from modelgate.errors import RateLimitError, UpstreamStatusError
from modelgate.gateway.router import PoolRequest, Router
from modelgate.providers.base import ProviderCall
from modelgate.wire.chat import ChatRequest
from tests.gateway.test_router import Clock, ScriptedProvider, boom, no_sleep

NAMES = ("east", "west", "eu")


def pooled(
    balance: str,
    routes: list[dict[str, Any]],
    outcomes: dict[str, list[object]] | None = None,
    *,
    retries: int = 2,
    breaker: dict[str, float] | None = None,
) -> tuple[Router, ModelSpec, dict[str, ScriptedProvider], Any, Clock]:
    conf = {
        n: ProviderConfig(
            type="openai", base_url="http://x", max_retries=retries, circuit_breaker=breaker or {}
        )
        for n in NAMES
    }
    model = ModelSpec(
        id="t/pool",
        info={"name": "P", "developer": "D"},
        pricing=Pricing(input_usd_per_mtok=1, output_usd_per_mtok=1),
        routes=[Route.model_validate({"model": f"{r['provider']}-dep", **r}) for r in routes],
        balance=balance,  # type: ignore[arg-type]
    )
    fakes = {n: ScriptedProvider(n, (outcomes or {}).get(n, [])) for n in NAMES}
    clock = Clock()
    router = Router(
        Catalog(providers=conf, models=[model]),
        dict(fakes),
        clock=clock,
        sleep=no_sleep,
        rng=random.Random(7),
    )
    req = ChatRequest.model_validate({"model": "t/pool", "messages": [{"role": "user", "content": "x"}]})

    async def run(tokens: int = 100) -> str:
        def attempt(p: Any, r: Route) -> Any:
            return p.complete(ProviderCall(request=req, upstream_model=r.model, max_tokens=64, model=model))

        provider, _ = await router.complete(
            router.plan(model, None), attempt, pool=PoolRequest(model, tokens)
        )
        return provider

    return router, model, fakes, run, clock


async def test_weighted_distribution() -> None:
    _, _, fakes, run, _ = pooled(
        "weighted",
        [
            {"provider": "east", "weight": 6},
            {"provider": "west", "weight": 3},
            {"provider": "eu", "weight": 1},
        ],
    )
    served = Counter([await run() for _ in range(1000)])
    print("weighted 6:3:1 over 1000 requests:", dict(served))
    assert 540 <= served["east"] <= 660 and 240 <= served["west"] <= 360 and 60 <= served["eu"] <= 140
    assert sum(len(f.calls) for f in fakes.values()) == 1000  # one upstream call each, no failover


async def test_weight_zero_is_a_last_resort() -> None:
    _, _, _, run, _ = pooled(
        "weighted",
        [{"provider": "east", "weight": 0}, {"provider": "west"}],
        {"west": [boom(503)]},
        retries=0,
    )
    assert Counter([await run() for _ in range(50)])["west"] == 49  # east only when west failed


async def test_cost_and_latency_order() -> None:
    cheap = PriceSheet(input_usd_per_mtok=Decimal("0.5"), output_usd_per_mtok=Decimal("1"))
    _, _, _, run, clock = pooled("cost", [{"provider": "east"}, {"provider": "west", "pricing": cheap}])
    assert {await run() for _ in range(20)} == {"west"}

    _router, _model, fakes, run, clock = pooled("latency", [{"provider": "east"}, {"provider": "west"}])
    slow = fakes["east"].complete

    async def slower(call: ProviderCall) -> Any:
        clock.now += 2.0  # east takes 2 s, west no time at all
        return await slow(call)

    fakes["east"].complete = slower  # type: ignore[method-assign]
    first = [await run() for _ in range(2)]
    assert sorted(first) == ["east", "west"]  # unmeasured members are tried first, once each
    assert {await run() for _ in range(20)} == {"west"}


async def test_least_busy_counts_open_streams() -> None:
    router, model, _fakes, _, _ = pooled("least_busy", [{"provider": "east"}, {"provider": "west"}])
    req = ChatRequest.model_validate(
        {"model": "t/pool", "messages": [{"role": "user", "content": "x"}], "stream": True}
    )

    async def open_one() -> tuple[str, Any]:
        def start(p: Any, r: Route) -> Any:
            return p.stream(ProviderCall(request=req, upstream_model=r.model, max_tokens=64, model=model))

        name, _, it = await router.open_stream(router.plan(model, None), start, pool=PoolRequest(model, 10))
        return name, it

    a, it_a = await open_one()
    b, it_b = await open_one()
    assert {a, b} == {"east", "west"}  # the second went to the idle member
    async for _ in it_a:  # the first stream ends: its member is idle again
        pass
    c, it_c = await open_one()
    assert c == a
    for it in (it_b, it_c):
        await it.aclose()
    assert all(m.in_flight == 0 for m in router.pool.members.values())


async def test_per_deployment_rpm_and_tpm() -> None:
    _, _model, fakes, run, clock = pooled(
        "weighted",
        [{"provider": "east", "weight": 100, "rpm": 2}, {"provider": "west", "weight": 1, "tpm": 250}],
    )
    assert [await run() for _ in range(4)] == [
        "east",
        "east",
        "west",
        "west",
    ]  # east at 2 rpm; west 2x100 tokens
    with pytest.raises(RateLimitError) as info:
        await run()  # every member is at its limit: refused, no upstream call over quota
    assert info.value.status_code == 429 and info.value.headers["Retry-After"] == "60"
    assert len(fakes["east"].calls) == 2 and len(fakes["west"].calls) == 2
    clock.now += 60.0
    assert await run() == "east"


async def test_429_moves_to_another_member_and_rests_it() -> None:
    limited = UpstreamStatusError("slow down", upstream_status=429, provider="east", retry_after=5.0)
    _, _, fakes, run, clock = pooled(
        "weighted",
        [{"provider": "east", "weight": 1000}, {"provider": "west", "weight": 1}],
        {"east": [limited]},
    )
    assert await run() == "west"  # no error reaches the caller
    assert len(fakes["east"].calls) == 1  # the 429 was not retried on the same member (max_retries 2)
    assert await run() == "west"  # east rests until its Retry-After
    clock.now += 5.0
    assert await run() == "east"


async def test_failing_member_taken_out_and_tried_again_later() -> None:
    router, _model, fakes, run, clock = pooled(
        "weighted",
        [{"provider": "east", "weight": 1000}, {"provider": "west", "weight": 1}],
        {"east": [boom(503), boom(503)]},
        retries=0,
        breaker={"failure_threshold": 1, "cooldown": 30},
    )
    assert await run() == "west"
    assert router.breaker_state("east") == "open"
    assert [await run() for _ in range(5)] == ["west"] * 5 and len(fakes["east"].calls) == 1
    clock.now += 30.0  # half-open: one trial; it fails again, west answers
    assert await run() == "west" and len(fakes["east"].calls) == 2
    clock.now += 30.0
    assert await run() == "east"  # healthy again: back in the pool
