"""Routing: fallback order, named provider without fallback, breaker states, no fallback after first chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelgate.catalog.models import ModelSpec, Pricing, ProviderConfig, Route
from modelgate.catalog.registry import Catalog
from modelgate.errors import (
    InvalidRequestError,
    ProviderNotConfiguredError,
    ProviderSkippedError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
)
from modelgate.gateway.router import Router
from modelgate.providers.base import AdapterDefaults, Chunk, Completion, ProviderCall, Usage
from modelgate.wire.chat import ChatRequest


class ScriptedProvider(AdapterDefaults):
    supports_tools = supports_json_schema = supports_streaming = supports_vision = True
    supports_embeddings = forwards_unknown_fields = False
    drain_on_disconnect = True
    dialects: frozenset[str] = frozenset()

    def __init__(self, name: str, outcomes: list[object]) -> None:
        self.name = name
        self.outcomes = outcomes
        self.calls: list[str] = []

    def _next(self) -> object:
        return self.outcomes.pop(0) if self.outcomes else "ok"

    async def complete(self, call: ProviderCall) -> Completion:
        self.calls.append(call.upstream_model)
        outcome = self._next()
        if isinstance(outcome, Exception):
            raise outcome
        return Completion(
            choices=[
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.name},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            usage=Usage(1, 1),
        )

    async def stream(self, call: ProviderCall) -> AsyncIterator[Chunk]:
        self.calls.append(call.upstream_model)
        outcome = self._next()
        if isinstance(outcome, Exception):
            raise outcome
        yield Chunk(choices=[{"index": 0, "delta": {"content": self.name}, "finish_reason": None}])
        if outcome == "fail-after-first":
            raise UpstreamConnectionError("reset", provider=self.name)
        yield Chunk(choices=[], usage=Usage(1, 1))

    async def aclose(self) -> None:
        return None


def boom(status: int) -> UpstreamStatusError:
    return UpstreamStatusError(f"status {status}", upstream_status=status, provider="x")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def no_sleep(_: float) -> None:
    return None


def setup(outcomes: dict[str, list[object]], *, breaker: dict[str, float] | None = None, retries: int = 0):
    providers_conf = {
        name: ProviderConfig(
            type="openai", base_url="http://x", max_retries=retries, circuit_breaker=breaker or {}
        )
        for name in ("a", "b", "c")
    }
    providers_conf["c"].missing_env = ["C_KEY"]
    model = ModelSpec(
        id="t/m",
        info={"name": "M", "developer": "D"},
        pricing=Pricing(input_usd_per_mtok=1, output_usd_per_mtok=1),
        routes=[Route(provider="a", model="a-model"), Route(provider="b", model="b-model")],
    )
    catalog = Catalog(providers=providers_conf, models=[model])
    fakes = {name: ScriptedProvider(name, outcomes.get(name, [])) for name in ("a", "b")}
    clock = Clock()
    router = Router(catalog, dict(fakes), clock=clock, sleep=no_sleep)
    req = ChatRequest.model_validate({"model": "t/m", "messages": [{"role": "user", "content": "x"}]})

    def make(route: Route) -> ProviderCall:
        return ProviderCall(request=req, upstream_model=route.model, max_tokens=512, model=model)

    return router, model, fakes, make, clock


async def test_fallback_in_order_on_retryable_errors():
    router, model, fakes, make, _ = setup({"a": [boom(503)]})
    provider, result = await router.complete(router.plan(model, None), lambda p, r: p.complete(make(r)))
    assert provider == "b" and result.choices[0]["message"]["content"] == "b"
    assert fakes["a"].calls == ["a-model"] and fakes["b"].calls == ["b-model"]


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_no_fallback_on_request_errors(status):
    router, model, fakes, make, _ = setup({"a": [boom(status)]})
    with pytest.raises(UpstreamStatusError):
        await router.complete(router.plan(model, "auto"), lambda p, r: p.complete(make(r)))
    assert fakes["b"].calls == []


async def test_named_provider_runs_alone_without_fallback():
    router, model, fakes, make, _ = setup({"b": [boom(500)]})
    plan = router.plan(model, "B")
    assert [r.provider for r in plan] == ["b"]
    with pytest.raises(UpstreamError):
        await router.complete(plan, lambda p, r: p.complete(make(r)))
    assert fakes["a"].calls == []


async def test_unknown_provider_lists_valid_ones():
    router, model, *_ = setup({})
    with pytest.raises(InvalidRequestError) as exc:
        router.plan(model, "openrouter")
    assert "auto, a, b" in exc.value.message and exc.value.param == "provider"


async def test_retries_then_success():
    router, model, fakes, make, _ = setup({"a": [boom(429), boom(500)]}, retries=2)
    provider, _ = await router.complete(router.plan(model, "a"), lambda p, r: p.complete(make(r)))
    assert provider == "a" and len(fakes["a"].calls) == 3


async def test_circuit_breaker_open_half_open_closed():
    router, model, fakes, make, clock = setup(
        {"a": [boom(500), boom(500)]}, breaker={"failure_threshold": 2, "cooldown": 10}
    )
    plan = router.plan(model, None)
    await router.complete(plan, lambda p, r: p.complete(make(r)))  # a fails (1), b serves
    await router.complete(plan, lambda p, r: p.complete(make(r)))  # a fails (2) -> open
    assert router.breaker_state("a") == "open"
    calls_before = len(fakes["a"].calls)
    provider, _ = await router.complete(plan, lambda p, r: p.complete(make(r)))
    assert provider == "b" and len(fakes["a"].calls) == calls_before  # skipped while open
    clock.now += 11
    assert router.breaker_state("a") == "half-open"
    fakes["a"].outcomes = [boom(500)]
    await router.complete(plan, lambda p, r: p.complete(make(r)))  # trial fails -> open again
    assert router.breaker_state("a") == "open"
    clock.now += 11
    provider, _ = await router.complete(plan, lambda p, r: p.complete(make(r)))  # trial succeeds -> closed
    assert provider == "a" and router.breaker_state("a") == "closed"


async def test_stream_falls_back_only_before_first_chunk():
    router, model, fakes, make, _ = setup({"a": [UpstreamConnectionError("refused", provider="a")]})
    provider, first, rest = await router.open_stream(router.plan(model, None), lambda p, r: p.stream(make(r)))
    assert provider == "b" and first is not None and first.choices[0]["delta"]["content"] == "b"

    router, model, fakes, make, _ = setup({"a": ["fail-after-first"]})
    provider, first, rest = await router.open_stream(router.plan(model, None), lambda p, r: p.stream(make(r)))
    assert provider == "a"
    with pytest.raises(UpstreamConnectionError):
        async for _ in rest:
            pass
    assert fakes["b"].calls == []  # bytes already produced: no fallback


async def test_unconfigured_only_route_is_503():
    router, model, *_ = setup({})
    model.routes.append(Route(provider="c", model="c-model"))
    with pytest.raises(ProviderNotConfiguredError, match="set C_KEY"):
        router.plan(model, "c")


@pytest.mark.parametrize(
    ("status", "client_status"),
    [(500, 503), (429, 429)],
    ids=["opened-on-5xx", "opened-on-429"],
)
async def test_a_skipped_provider_answers_503_or_429_with_retry_after(status, client_status):
    """Issue 10: every route skipped by its open breaker used to answer 502 without Retry-After."""
    router, model, fakes, make, clock = setup(
        {"a": [boom(status), boom(status)]}, breaker={"failure_threshold": 2, "cooldown": 30}
    )
    plan = router.plan(model, "a")
    for _ in range(2):
        with pytest.raises(UpstreamStatusError):
            await router.complete(plan, lambda p, r: p.complete(make(r)))
    assert router.breaker_state("a") == "open"
    clock.now += 10
    with pytest.raises(ProviderSkippedError) as info:
        await router.complete(plan, lambda p, r: p.complete(make(r)))
    err = info.value
    assert err.status_code == client_status and err.code == "circuit_open"
    assert err.headers["Retry-After"] == "20"  # the seconds until the breaker lets a trial through
    assert len(fakes["a"].calls) == 2  # skipped: the upstream was not called


async def test_an_adapter_failing_unexpectedly_is_a_502_not_a_500():
    router, model, _fakes, make, _ = setup({"a": [KeyError("choices")]})
    with pytest.raises(UpstreamProtocolError) as info:
        await router.complete(router.plan(model, "a"), lambda p, r: p.complete(make(r)))
    assert info.value.status_code == 502 and "KeyError" not in info.value.message


async def test_breaker_is_per_route_not_per_provider():
    """Issue 18: one broken upstream model opened the breaker of its whole provider, so every other
    model served by that provider was refused for the cooldown. The breaker is the route's now."""
    router, model, fakes, make, _ = setup(
        {"a": [boom(500), boom(500)]}, breaker={"failure_threshold": 2, "cooldown": 30}
    )
    other = ModelSpec(
        id="t/other",
        info={"name": "O", "developer": "D"},
        pricing=Pricing(input_usd_per_mtok=1, output_usd_per_mtok=1),
        routes=[Route(provider="a", model="a-other")],
    )
    router._catalog.models.append(other)
    plan = router.plan(model, "a")
    for _ in range(2):
        with pytest.raises(UpstreamStatusError):
            await router.complete(plan, lambda p, r: p.complete(make(r)))
    assert router.breaker_state("a", "a-model") == "open"
    with pytest.raises(ProviderSkippedError, match="a-model"):
        await router.complete(plan, lambda p, r: p.complete(make(r)))
    # The provider's other model is still served, and the provider as a whole is usable.
    provider, _ = await router.complete(router.plan(other, None), lambda p, r: p.complete(make(r)))
    assert provider == "a" and fakes["a"].calls[-1] == "a-other"
    assert router.breaker_state("a", "a-other") == "closed"
    assert router.breaker_state("a") == "closed"
    assert router.open_routes("a") == {"a-model": "open"}
    # Only when every route of the provider is open does the provider read open.
    fakes["a"].outcomes = [boom(500), boom(500)]
    for _ in range(2):
        with pytest.raises(UpstreamStatusError):
            await router.complete(router.plan(other, None), lambda p, r: p.complete(make(r)))
    assert router.breaker_state("a") == "open"
