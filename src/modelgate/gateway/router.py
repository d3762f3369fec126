"""Routing: walk a model's provider chain with bounded retries, fallback and circuit breakers.

- ``provider`` in the request: ``auto`` (default) walks the whole chain; a named provider runs only
  that route, with retries but no fallback; an unknown name is a 400 listing the valid ones.
- Fallback happens only on retryable failures (connect errors, timeouts, 429, 5xx, 529), never on
  errors caused by the request. A stream falls back only before its first chunk was produced.
- A route (provider + upstream model) failing ``failure_threshold`` times in a row is skipped for
  ``cooldown`` seconds (open), then given one trial request (half-open); a success closes the
  breaker. The settings are the provider's, the breaker is the route's: one broken model of a
  multi-model upstream (vLLM, an aggregator) does not block the provider's other models. A request
  whose every route is skipped gets 503 with ``Retry-After`` (429 when the breaker opened on 429s).
- An attempt failing with anything but a ``GatewayError`` (an adapter bug, an upstream value it did
  not expect) is an invalid upstream answer (502), never a 500. The values of what succeeds are
  checked by the core (``gateway/checked.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from modelgate.catalog.models import ModelSpec, Route
from modelgate.catalog.registry import Catalog, not_configured_message
from modelgate.errors import (
    GatewayError,
    InvalidRequestError,
    ProviderNotConfiguredError,
    ProviderSkippedError,
    UpstreamError,
    UpstreamProtocolError,
)
from modelgate.gateway.pool import Pool, saturated
from modelgate.providers.base import Provider

log = logging.getLogger("modelgate.gateway")

MAX_BACKOFF = 8.0
T = TypeVar("T")
E = TypeVar("E")


@dataclass(slots=True)
class Breaker:
    failure_threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False
    rate_limited: bool = False  # the failure that opened it was an upstream 429

    def state(self, now: float) -> str:
        if self.opened_at is None:
            return "closed"
        if now - self.opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def allow(self, now: float) -> bool:
        st = self.state(now)
        if st == "closed":
            return True
        if st == "half-open" and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self.trial_in_flight = 0, None, False

    def failure(self, now: float, *, rate_limited: bool = False) -> None:
        self.trial_in_flight = False
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = now
            self.rate_limited = rate_limited

    def reopens_in(self, now: float) -> float:
        """Seconds until the open breaker lets a trial request through."""
        return max(0.0, self.cooldown - (now - self.opened_at)) if self.opened_at is not None else 0.0


class Router:
    def __init__(
        self,
        catalog: Catalog,
        providers: dict[str, Provider],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._catalog = catalog
        self.pool = Pool(clock=clock, rng=rng)  # models with ``balance``: gateway/pool.py
        self._providers = providers
        self._clock = clock
        self._sleep = sleep
        # One breaker per route: (provider, upstream model), made on first use.
        self.breakers: dict[tuple[str, str], Breaker] = {}
        # Called with (provider, error) for every failed attempt (metrics: observability/).
        self.on_upstream_error: Callable[[str, UpstreamError], None] | None = None

    def plan(self, model: ModelSpec, requested: str | None) -> list[Route]:
        """The routes to try, in order; raises for unknown or unconfigured providers."""
        wanted = (requested or "auto").strip().lower()
        routes = list(model.routes)
        if wanted != "auto":
            routes = [r for r in model.routes if r.provider.lower() == wanted]
            if not routes:
                valid = ", ".join(["auto", *dict.fromkeys(r.provider for r in model.routes)])
                raise InvalidRequestError(
                    f"provider: unknown provider {requested!r} for model {model.id}; valid values: {valid}",
                    param="provider",
                )
        usable = [r for r in routes if r.provider in self._providers]
        if not usable:
            conf = self._catalog.providers[routes[0].provider]
            raise ProviderNotConfiguredError(not_configured_message(routes[0].provider, conf))
        if model.balance is not None and len(usable) > 1:
            usable = self.pool.order(
                model, usable, unhealthy=lambda r: self.breaker_state(r.provider, r.model) == "open"
            )
        return usable

    async def complete(
        self,
        plan: list[Route],
        attempt: Callable[[Provider, Route], Awaitable[T]],
        *,
        pool: PoolRequest | None = None,
    ) -> tuple[str, T]:
        """Run ``attempt(provider, route)`` along the plan; the first success wins. With ``pool``
        (a model with ``balance``), members at their rate limits are passed over and their use
        recorded (``gateway/pool.py``)."""
        last: GatewayError | None = None
        waits: list[float] = []
        for route in plan:
            provider = self._providers[route.provider]

            async def once(r: Route = route, p: Provider = provider) -> T:
                with adapter_failures(r.provider):
                    return await attempt(p, r)

            if pool is not None and (wait := self.pool.take(route, pool.tokens)) is not None:
                waits.append(wait)
                continue
            started = self.pool.started(route) if pool is not None else 0.0
            ok = False
            try:
                result = await self._with_retries(route, once, pooled=pool is not None)
                ok = True
                if pool is not None:
                    self.pool.answered(route, started)
                return route.provider, result
            except UpstreamError as exc:
                if pool is not None:
                    self._member_failed(route, exc)
                if not exc.retryable:
                    raise
                last = exc
            finally:
                if pool is not None:
                    self.pool.finished(route, started, ok=ok)
        if last is None and pool is not None and waits:
            raise saturated(pool.model, waits)
        raise last or _all_open(plan)

    def _member_failed(self, route: Route, exc: UpstreamError) -> None:
        if getattr(exc, "upstream_status", None) == 429 or getattr(exc, "rate_limited", False):
            self.pool.rate_limited(route, getattr(exc, "retry_after", None))

    async def open_stream(
        self,
        plan: list[Route],
        start: Callable[[Provider, Route], AsyncIterator[E]],
        *,
        pool: PoolRequest | None = None,
    ) -> tuple[str, E | None, AsyncIterator[E]]:
        """Start a stream and wait for its first event (the last point where fallback is allowed)."""
        last: GatewayError | None = None
        waits: list[float] = []
        for route in plan:
            if pool is not None and (wait := self.pool.take(route, pool.tokens)) is not None:
                waits.append(wait)
                continue

            async def begin(r: Route = route) -> tuple[E | None, AsyncIterator[E]]:
                with adapter_failures(r.provider):
                    it = aiter(start(self._providers[r.provider], r))
                try:
                    with adapter_failures(r.provider):
                        first = await anext(it)
                except StopAsyncIteration:
                    return None, it
                except BaseException:
                    await _aclose(it)
                    raise
                return first, it

            started = self.pool.started(route) if pool is not None else 0.0
            try:
                first, it = await self._with_retries(route, begin, pooled=pool is not None)
            except BaseException as exc:
                if pool is not None:
                    self.pool.finished(route, started, ok=False)
                    if isinstance(exc, UpstreamError):
                        self._member_failed(route, exc)
                if not isinstance(exc, UpstreamError) or not exc.retryable:
                    raise
                last = exc
                continue
            if pool is not None:
                self.pool.answered(route, started)
                it = _Counted(it, functools.partial(self.pool.finished, route, started, ok=True))
            return route.provider, first, it
        if last is None and pool is not None and waits:
            raise saturated(pool.model, waits)
        raise last or _all_open(plan)

    async def _with_retries(
        self, route: Route, attempt: Callable[[], Awaitable[T]], *, pooled: bool = False
    ) -> T:
        breaker = self._breaker(route.provider, route.model)
        retries = self._catalog.providers[route.provider].max_retries
        for n in range(retries + 1):
            now = self._clock()
            if not breaker.allow(now):
                wait = max(1.0, breaker.reopens_in(now))
                raise ProviderSkippedError(
                    f"provider {route.provider} (model {route.model}) is temporarily skipped"
                    " after repeated failures"
                    f"{' (it is rate limiting the gateway)' if breaker.rate_limited else ''}; "
                    f"retry after {math.ceil(wait)}s",
                    provider=route.provider,
                    retry_after=wait,
                    rate_limited=breaker.rate_limited,
                )
            try:
                result = await attempt()
            except UpstreamError as exc:
                if self.on_upstream_error is not None:
                    self.on_upstream_error(route.provider, exc)
                if exc.retryable:
                    breaker.failure(self._clock(), rate_limited=getattr(exc, "upstream_status", None) == 429)
                else:
                    breaker.success()
                # A pool member that rate limits is not retried: the next member takes the request.
                if not exc.retryable or n == retries or (pooled and _is_429(exc)):
                    raise
                delay = getattr(exc, "retry_after", None)
                if delay is None:
                    delay = min(MAX_BACKOFF, 0.25 * 2**n) * random.uniform(0.5, 1.0)
                await self._sleep(min(float(delay), MAX_BACKOFF))
                continue
            except BaseException:
                breaker.trial_in_flight = False
                raise
            breaker.success()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _breaker(self, provider: str, model: str) -> Breaker:
        breaker = self.breakers.get((provider, model))
        if breaker is None:
            conf = self._catalog.providers.get(provider)
            cb = conf.circuit_breaker if conf is not None else {}
            breaker = self.breakers[(provider, model)] = Breaker(
                failure_threshold=int(cb.get("failure_threshold", 5)),
                cooldown=float(cb.get("cooldown", 30.0)),
            )
        return breaker

    def breaker_state(self, provider: str, model: str | None = None) -> str:
        """One route's state, or with no ``model`` the provider's: ``open`` (or ``half-open``)
        only when every one of its catalogue routes is, else ``closed`` (a route is usable)."""
        now = self._clock()
        if model is not None:
            breaker = self.breakers.get((provider, model))
            return breaker.state(now) if breaker is not None else "closed"
        models = {r.model for m in self._catalog.models for r in m.routes if r.provider == provider}
        models.update(m for p, m in self.breakers if p == provider)
        states = {self.breaker_state(provider, m) for m in models}
        if not states or "closed" in states:
            return "closed"
        return "half-open" if "half-open" in states else "open"

    def open_routes(self, provider: str) -> dict[str, str]:
        """The provider's upstream models whose breaker is not closed, with their state."""
        now = self._clock()
        out = {m: b.state(now) for (p, m), b in self.breakers.items() if p == provider}
        return {m: st for m, st in sorted(out.items()) if st != "closed"}


@dataclass(frozen=True, slots=True)
class PoolRequest:
    """What the router needs to balance one request over a pool: its model and its token count
    for the members' tokens-per-minute limits (prompt estimate + output cap)."""

    model: ModelSpec
    tokens: int


def _is_429(exc: UpstreamError) -> bool:
    return getattr(exc, "upstream_status", None) == 429


class _Counted(Generic[E]):
    """``it``, calling ``done`` once when it ends, fails or is closed (a pool member's stream in
    flight; closed before its first read included)."""

    __slots__ = ("_done", "_it")

    def __init__(self, it: AsyncIterator[E], done: Callable[[], None]) -> None:
        self._it = it
        self._done: Callable[[], None] | None = done

    def __aiter__(self) -> _Counted[E]:
        return self

    async def __anext__(self) -> E:
        try:
            return await anext(self._it)
        except BaseException:
            self._finish()
            raise

    def _finish(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done()

    async def aclose(self) -> None:
        self._finish()
        await _aclose(self._it)


def _all_open(plan: list[Route]) -> GatewayError:
    names = ", ".join(r.provider for r in plan)
    return UpstreamError(f"no provider could serve the request (tried: {names})")


class adapter_failures:
    """An adapter that fails with anything but a ``GatewayError`` (a bug, or an upstream value it
    did not expect) gives an invalid-upstream-answer error, never a 500. A class, not a
    ``@contextmanager`` generator: it wraps every attempt, and a generator costs a few µs each."""

    __slots__ = ("provider",)

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        if exc is None or not isinstance(exc, Exception):
            return False  # no error, or CancelledError / KeyboardInterrupt: as they are
        if isinstance(exc, GatewayError | StopAsyncIteration):
            return False
        provider = self.provider
        log.error("provider %s failed unexpectedly", provider, exc_info=exc)
        raise UpstreamProtocolError(
            f"upstream {provider} answered something the gateway could not read", provider=provider
        ) from exc


async def _aclose(it: AsyncIterator[object]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()
