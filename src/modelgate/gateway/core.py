"""The metered core: the one lifecycle every door's model call goes through.

    door ──MeteredRequest──▶ MeteredCore.complete / .stream
         admit (key, scope, model, output cap, capabilities, rate limit)   gateway/admission.py
         → hold the worst-case cost                                        store/ledger*.py
         → route: chain, retries, fallback, breaker; each attempt runs     gateway/router.py
           the door's Invocation (pass-through or translation)
         → settle to the real usage on every exit: success, failure,       gateway/settling.py
           client abort, cancellation
         → log row and metrics                                             gateway/recorder.py

It knows no wire format and nothing above it: results go back as ``Metered`` / ``MeteredStream``
(``gateway/metered.py``), errors as ``GatewayError``s the door renders in its own envelope.

Every exit path ends the hold exactly once: settled to the real usage on success (also when a client
abandons a stream: the upstream is drained for its usage, or the adapter's live counts are used, or
every event produced is counted), released on any failure. A cancelled whole answer (a stopping
server cancels what outlives its grace period) is released, or settled to the adapter's live counts
when it keeps them (the local model). ``drain_background`` waits for admitted requests to end
before the background settles, so a stopping server loses none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from modelgate.accounts.keys import KeyIdentity
from modelgate.cache.stage import ResponseCache
from modelgate.catalog.models import Route
from modelgate.catalog.registry import Catalog
from modelgate.errors import GatewayError, UpstreamError
from modelgate.gateway.admission import admit, check_key, check_model_allowed, resolve_model
from modelgate.gateway.bodies import BodyLog
from modelgate.gateway.cached import CACHE, CacheSteps
from modelgate.gateway.flight import Flight, LiveUsage
from modelgate.gateway.holds import HoldPolicy
from modelgate.gateway.metered import (
    Caller,
    CountRequest,
    Event,
    Metered,
    MeteredRequest,
    MeteredStream,
    Outcome,
    Settled,
)
from modelgate.gateway.recorder import RequestMeta, RequestRecorder
from modelgate.gateway.router import Router
from modelgate.gateway.settling import SettleSteps
from modelgate.gateway.streaming import WAIT, UpstreamPump
from modelgate.limits.base import Limiter, RateLimit
from modelgate.observability.tracing import RequestTracer, start_trace, traced
from modelgate.providers.base import Provider, Usage
from modelgate.store.ledger import LedgerBase
from modelgate.store.log_sink import RequestLogSink

log = logging.getLogger("modelgate.gateway")


class MeteredCore(SettleSteps, CacheSteps):
    def __init__(
        self,
        *,
        catalog: Catalog,
        providers: dict[str, Provider],
        router: Router,
        ledger: LedgerBase,
        logsink: RequestLogSink,
        limiter: Limiter | None = None,
        limits_for: Callable[[KeyIdentity], RateLimit] | None = None,
        metrics: Any = None,
        limiter_policy: str = "open",
        write_wait: float | None = None,
        hold_policy: HoldPolicy | None = None,
        cache: ResponseCache | None = None,
        tracer: RequestTracer | None = None,
    ) -> None:
        self.recorder = RequestRecorder(
            logsink=logsink,
            limiter=limiter,
            limits_for=limits_for,
            metrics=metrics,
            spawn=self.spawn,
            limiter_policy=limiter_policy,
        )
        # The longest a request's answer waits for its settle or release to commit (None: until it
        # commits). With the database unreachable the answer goes out and the write stays queued,
        # retried until it commits (MODELGATE_DATABASE_TIMEOUT).
        self.write_wait = write_wait
        self.hold_policy = hold_policy or HoldPolicy()  # output held, prompt-cache record (holds.py)
        self.cache = cache  # the response cache (cache/stage.py), None: off
        self.tracer = tracer  # OpenTelemetry request traces (observability/tracing.py), None: off
        self.bodies = BodyLog(logsink)  # body logging (gateway/bodies.py): off until the settings say
        self.catalog = catalog
        self.providers = providers
        self.router = router
        self.ledger = ledger
        self.logsink = logsink
        self._background: set[asyncio.Task[Any]] = set()
        self._flights = 0  # admitted requests whose hold is not yet settled or released (queued)
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- admission ---------------------------------------------------------------------------

    async def _admit(self, req: MeteredRequest, caller: Caller) -> Flight:
        """Key, model, capabilities and limits checked, rate limit counted, worst-case cost held.
        Any refusal is logged (every request that passed authentication leaves a row)."""
        meta = RequestMeta(caller)
        trace = meta.trace = start_trace(self.tracer, req, caller) if self.tracer is not None else None
        try:
            t = trace.now() if trace is not None else 0
            prep = admit(self.catalog, self.router, self.providers, req, caller.ident, self.hold_policy)
            meta.first_provider = prep.plan[0].provider
            await self.recorder.check_rate_limit(
                caller.ident, meta, tokens=prep.prompt_estimate + prep.max_tokens * max(req.n, 1)
            )
            if trace is not None:
                trace.step("modelgate.admission", t)
                t = trace.now()
            ticket = await self.ledger.hold(
                ident=caller.ident, inference_id=caller.inference_id, credits=prep.hold_credits
            )
            if trace is not None:
                trace.step("modelgate.hold", t, **{"modelgate.hold.credits": prep.hold_credits})
        except GatewayError as exc:
            self.reject(caller, exc, model=req.model, stream=req.stream, meta=meta)
            raise
        self._flights += 1
        self._idle.clear()
        return Flight(req, prep, meta, ticket)

    def _landed(self) -> None:
        """A flight's hold is settled or released (at least queued): it no longer needs waiting for."""
        self._flights -= 1
        if not self._flights:
            self._idle.set()

    def reject(
        self,
        caller: Caller,
        exc: GatewayError,
        *,
        model: str | None,
        stream: bool = False,
        meta: RequestMeta | None = None,
    ) -> None:
        """Log a request refused before any upstream was called (a door's 400s included)."""
        found = self.catalog.find(model) if model else None
        self.recorder.record(
            model=found.id if found is not None else (model or ""),
            meta=meta or RequestMeta(caller),
            provider=None,
            usage=Usage(),
            credits=0,
            finish=None,
            stream=stream,
            http_status=exc.status_code,
            error=exc.message,
        )

    # ---- a whole answer ----------------------------------------------------------------------

    async def complete(self, req: MeteredRequest, caller: Caller) -> Metered:
        f = await self._admit(req, caller)
        try:
            hit = await self._cached(f) if self._asks_cache(f) else None
            if hit is not None:
                answer = hit.answer
                assert not isinstance(answer, list)
                price = self._settle_hit(f, hit, answer.usage, answer.finish)
                if self.bodies.enabled:
                    self._keep_bodies(f, answer.payload)
                return Metered(
                    answer.payload, answer.usage, price, CACHE, f.prep.model, answer.finish,
                    dict(f.meta.rate_headers or {}), cache=f.meta.cache,
                )  # fmt: skip
            return await self._complete(f)
        finally:
            self._landed()

    async def _complete(self, f: Flight) -> Metered:
        invocation = f.req.invocation
        provider = f.prep.plan[0].provider
        attempts: list[tuple[str, LiveUsage]] = []

        async def attempt(p: Provider, route: Route) -> Outcome:
            attempts.append((route.provider, LiveUsage(route)))
            step = f.attempt(route, attempts[-1][1])
            call = invocation.complete(p, step)
            trace = f.meta.trace
            if trace is None:
                return await call
            return await traced(
                trace, route, len(attempts), call, step.headers if self._forwards(route) else None
            )

        try:
            provider, result = await self.router.complete(f.prep.plan, attempt, pool=f.pool)
        except asyncio.CancelledError as exc:
            if not (attempts and self._settle_cancelled(f, *attempts[-1])):
                await self._finish_failed(f, provider, exc)
            raise
        except BaseException as exc:
            await self._finish_failed(f, provider, exc)
            raise
        credits = f.cost(result.usage, attempts[-1][1].route)
        self._keep(f, result, credits)
        if self.bodies.enabled:
            self._keep_bodies(f, result.payload)
        # Settle and log queued, not awaited: the charge is committed right after the response (as
        # documented), and a cancelled caller can neither skip it nor its log row.
        self._settle_and_log(f, provider, result.usage, credits, result.finish)
        return Metered(
            payload=result.payload,
            usage=result.usage,
            credits=f.charge(credits),
            provider=provider,
            model=f.prep.model,
            finish=result.finish,
            headers=dict(f.meta.rate_headers or {}),
        )

    # ---- a count (unbilled) ------------------------------------------------------------------

    async def count(self, req: CountRequest, caller: Caller) -> int:
        """An input-token count: the key and model admitted as for a model call; nothing held,
        charged or rate limited, and no request-log row (a count is not a model call), only a debug
        line. The model's routes are asked in order; a retryable upstream failure moves on, any other
        is raised; no exact count anywhere gives the door's estimate."""
        check_key(caller.ident, req.scope)
        model = resolve_model(self.catalog, req.model, req.kind)
        check_model_allowed(caller.ident, model)
        for route in self.router.plan(model, None):
            try:
                tokens = await req.counter(self.providers[route.provider], route)
            except UpstreamError as exc:
                if not exc.retryable:
                    raise
                continue
            if tokens is not None:
                log.debug("count %s: %d input tokens from %s", caller.inference_id, tokens, route.provider)
                return tokens
        log.debug("count %s: %d input tokens (estimate)", caller.inference_id, req.estimate)
        return req.estimate

    # ---- a stream ----------------------------------------------------------------------------

    async def stream(self, req: MeteredRequest, caller: Caller) -> MeteredStream:
        f = await self._admit(req, caller)
        try:
            hit = await self._cached(f) if self._asks_cache(f) else None
        except BaseException:
            self._landed()
            raise
        if hit is not None:
            return self._replay(f, hit)
        invocation = req.invocation
        attempts: list[LiveUsage] = []
        provider = f.prep.plan[0].provider

        def start(p: Provider, route: Route) -> AsyncIterator[Event]:
            attempts.append(LiveUsage(route))
            step = f.attempt(route, attempts[-1])
            if f.meta.trace is not None:
                f.meta.trace.attempt_begin(route.provider, route.model, len(attempts))
                if self._forwards(route):
                    step.headers["traceparent"] = f.meta.trace.traceparent()
            return invocation.stream(p, step)

        try:
            provider, first, upstream = await self.router.open_stream(f.prep.plan, start, pool=f.pool)
        except BaseException as exc:
            self._landed()
            await self._finish_failed(f, provider, exc)
            raise
        f.meta.first_event = time.perf_counter()
        if f.req.cache is not None and not self.bodies.enabled:
            # Committed to a route: only body logging reads the raw body again, and a stream of
            # minutes must not keep an agent's request of hundreds of KB alive (RSS, docs/benchmarks.md).
            f.req = replace(f.req, cache=None)
        if f.meta.trace is not None:
            f.meta.trace.attempt_end()  # an attempt's span lasts until its first event
        pump = UpstreamPump(first, upstream, provider=provider)
        attempts[-1].counter = lambda: pump.produced  # what a later report of the adapter counts
        events = self._events(f, provider, pump, attempts[-1])
        # Run the generator to its priming point, inside its try: from now on it owns the hold, and
        # closing it (or its finalisation, if the door never iterates it because the client left
        # first) settles the hold to what the upstream produced.
        await anext(events)
        return MeteredStream(
            provider=provider, model=f.prep.model, headers=dict(f.meta.rate_headers or {}), events=events
        )

    async def _events(
        self, f: Flight, provider: str, pump: UpstreamPump, live: LiveUsage
    ) -> AsyncIterator[Any]:
        bodies = self.bodies.enabled
        kept: list[Event] | None = [] if f.lookup is not None or bodies else None
        try:
            yield None  # priming point (consumed by stream(), never seen by the door)
            while True:
                event = pump.take()  # an event already read: no coroutine for it
                if event is WAIT:
                    event = await pump.next()
                if event is None:
                    break
                if kept is not None:
                    kept.append(event)
                yield event
        except GatewayError as exc:
            if pump.produced:
                if bodies and kept is not None:
                    self._keep_bodies(f, [e.payload for e in kept])
                # Output already reached the client: a failure after it (a reset, an error event, an
                # invalid usage answer) is charged for what was produced, never a free request: the
                # upstream's last reported figures and the output since, estimated.
                usage = self._known_usage(f, provider, pump, live)
                settle = self._settle_and_log(
                    f,
                    provider,
                    usage,
                    f.cost(usage, live.route),
                    "error",
                    http_status=exc.status_code,
                    error=exc.message,
                )
                with contextlib.suppress(asyncio.CancelledError):
                    await self._written(settle)
            else:
                await self._finish_failed(f, provider, exc)
            raise
        except BaseException:
            if bodies and kept is not None:
                self._keep_bodies(f, [e.payload for e in kept])
            # The client went away (generator closed / task cancelled): charge what was produced.
            self.spawn(self._settle_abandoned(f, provider, pump, live))
            raise
        finally:
            self._landed()
        usage = pump.usage or f.estimate_usage(pump.produced)
        credits = f.cost(usage, live.route)
        if kept is not None and pump.usage is not None:
            self._keep(f, kept, credits)  # a whole stream with its usage: never a partial one
        if bodies and kept is not None:
            self._keep_bodies(f, [e.payload for e in kept])
        settle = self._settle_and_log(f, provider, usage, credits, pump.finish)
        yield Settled(usage=usage, credits=f.charge(credits), finish=pump.finish)
        await self._written(settle)

    def _keep_bodies(self, f: Flight, answer: Any) -> None:
        """Body logging is on: queue this request's prompt and answer (gateway/bodies.py)."""
        caller = f.meta.caller
        raw = f.req.cache.body if f.req.cache is not None else None
        self.bodies.record(
            inference_id=caller.inference_id, account_id=caller.ident.account_id, raw=raw, answer=answer
        )

    def _forwards(self, route: Route) -> bool:
        """Whether the operator sends the trace context to this route's upstream."""
        config = self.catalog.providers.get(route.provider)
        return config is not None and config.forward_traceparent

    # ---- background work ---------------------------------------------------------------------

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def drain_background(self, *, flights_timeout: float = 3.0) -> None:
        """Wait for admitted requests to settle or release (a stopping server has cancelled those
        past its grace period; their handlers still run), then for every background task."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), flights_timeout)
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
