"""The chat pipeline: resolve model → check scope → price and hold → route → settle → log.

It knows nothing of HTTP frameworks or provider wire formats: ``api/chat.py`` hands it a validated
``ChatRequest`` and an authenticated ``KeyIdentity`` and renders what comes back.

Every exit path ends the hold exactly once: settled to the real usage on success (also when a
client abandons a stream: the upstream is drained for its usage, or the adapter's live counts are
used), released on any failure, including cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from modelgate.accounts.keys import KeyIdentity
from modelgate.billing.ledger import HoldTicket, LedgerBase
from modelgate.catalog.models import Route
from modelgate.catalog.registry import Catalog
from modelgate.errors import (
    GatewayError,
)
from modelgate.gateway.admission import Prepared, admit
from modelgate.gateway.logsink import RequestLogSink
from modelgate.gateway.recorder import RequestMeta, RequestRecorder
from modelgate.gateway.render import DONE, ChunkRenderer, completion_body, error_frame
from modelgate.gateway.router import Router
from modelgate.gateway.streaming import UpstreamPump
from modelgate.limits.base import Limiter, RateLimit
from modelgate.providers.base import Chunk, Completion, Provider, ProviderCall, Usage
from modelgate.wire.chat import ChatRequest

log = logging.getLogger("modelgate.gateway")

DRAIN_TIMEOUT = 120.0


@dataclass(slots=True)
class CompletionResult:
    body: dict[str, Any]
    credits: int
    provider: str


@dataclass(slots=True)
class StreamResult:
    provider: str
    frames: AsyncIterator[bytes]


@dataclass(slots=True)
class _Flight:
    """One admitted request and its hold, as every later step needs them."""

    req: ChatRequest
    prep: Prepared
    ident: KeyIdentity
    meta: RequestMeta
    ticket: HoldTicket
    stream: bool

    def cost(self, usage: Usage) -> int:
        return self.prep.model.pricing.credits(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
        )

    def charge(self, credits: int) -> int:
        """What is charged for ``credits``: never more than was held."""
        return min(max(credits, 0), self.ticket.credits)

    def estimate_usage(self, deltas: int) -> Usage:
        """Only when an upstream never reported usage: an upper bound, capped by the hold."""
        return Usage(
            prompt_tokens=self.prep.prompt_estimate, completion_tokens=min(deltas, self.prep.max_tokens)
        )


class ChatGateway:
    def __init__(
        self,
        *,
        catalog: Catalog,
        providers: dict[str, Provider],
        router: Router,
        ledger: LedgerBase,
        logsink: RequestLogSink,
        error_renderer: Any,
        limiter: Limiter | None = None,
        limits_for: Callable[[KeyIdentity], RateLimit] | None = None,
        metrics: Any = None,
    ) -> None:
        self.recorder = RequestRecorder(
            logsink=logsink, limiter=limiter, limits_for=limits_for, metrics=metrics, spawn=self._spawn
        )
        self.catalog = catalog
        self.providers = providers
        self.router = router
        self.ledger = ledger
        self.logsink = logsink
        self._render_error = error_renderer
        self._background: set[asyncio.Task[Any]] = set()

    # ---- preparation -------------------------------------------------------------------------

    async def _admit(
        self, req: ChatRequest, ident: KeyIdentity, meta: RequestMeta, *, stream: bool
    ) -> _Flight:
        """Model, scope and limits checked, rate limit counted, worst-case cost held."""
        prep = admit(self.catalog, self.router, req, ident)
        meta.first_provider = prep.plan[0].provider
        await self.recorder.check_rate_limit(
            ident, meta, tokens=prep.prompt_estimate + prep.max_tokens * (req.n or 1)
        )
        try:
            ticket = await self.ledger.hold(
                ident=ident, inference_id=meta.inference_id, credits=prep.hold_credits
            )
        except GatewayError as exc:  # refused (403: credits or key limit): logged as failed
            self.recorder.record(
                model=prep.model,
                ident=ident,
                meta=meta,
                provider=None,
                usage=Usage(),
                credits=0,
                finish=None,
                stream=stream,
                http_status=exc.status_code,
                error=exc.message,
            )
            raise
        return _Flight(req, prep, ident, meta, ticket, stream)

    @staticmethod
    def _call_factory(f: _Flight, calls: list[ProviderCall]) -> Callable[[Route], ProviderCall]:
        def make(route: Route) -> ProviderCall:
            call = ProviderCall(
                request=f.req,
                upstream_model=route.model,
                max_tokens=f.prep.max_tokens,
                model=f.prep.model,
                inference_id=f.meta.inference_id,
                extra=route.options,
            )
            calls.append(call)
            return call

        return make

    # ---- non-streaming -----------------------------------------------------------------------

    async def complete(self, req: ChatRequest, ident: KeyIdentity, meta: RequestMeta) -> CompletionResult:
        f = await self._admit(req, ident, meta, stream=False)
        provider = f.prep.plan[0].provider
        try:
            provider, result = await self.router.complete(f.prep.plan, self._call_factory(f, []))
        except BaseException as exc:
            await self._finish_failed(f, provider, exc)
            raise
        credits = f.cost(result.usage)
        # Settle and log queued, not awaited: the charge is committed right after the response (as
        # documented), and a cancelled caller can neither skip it nor its log row.
        self._settle_and_log(f, provider, result.usage, credits, _first_finish(result))
        body = completion_body(
            completion_id=f"chatcmpl-{meta.inference_id}",
            created=int(time.time()),
            model=f.prep.model.id,
            result=result,
            credits=f.charge(credits),
        )
        return CompletionResult(body=body, credits=f.charge(credits), provider=provider)

    # ---- streaming ---------------------------------------------------------------------------

    async def stream(self, req: ChatRequest, ident: KeyIdentity, meta: RequestMeta) -> StreamResult:
        f = await self._admit(req, ident, meta, stream=True)
        calls: list[ProviderCall] = []
        provider = f.prep.plan[0].provider
        try:
            provider, first, upstream = await self.router.open_stream(
                f.prep.plan, self._call_factory(f, calls)
            )
        except BaseException as exc:
            await self._finish_failed(f, provider, exc)
            raise
        frames = self._frames(f, provider, UpstreamPump(first, upstream, provider=provider), calls[-1])
        # Run the generator to its priming point, inside its try: from now on it owns the hold, and
        # closing it (or its finalisation, if the response never iterates it because the client
        # left first) settles the hold to what the upstream produced.
        await anext(frames)
        return StreamResult(provider=provider, frames=frames)

    async def _frames(
        self, f: _Flight, provider: str, pump: UpstreamPump, call: ProviderCall
    ) -> AsyncIterator[bytes]:
        renderer = ChunkRenderer(
            completion_id=f"chatcmpl-{f.meta.inference_id}", created=int(time.time()), model=f.prep.model.id
        )
        finish: str | None = None
        deltas = 0
        try:
            yield b""  # priming point (consumed by stream(), never sent)
            while (chunk := await pump.next()) is not None:
                if chunk.choices:
                    deltas += 1
                    finish = _chunk_finish(chunk) or finish
                    frame = renderer.choices(chunk)
                    if frame is not None:
                        yield frame
        except GatewayError as exc:
            await self._finish_failed(f, provider, exc)
            yield error_frame(self._render_error(exc, f.meta))
            return
        except BaseException:
            # The client went away (generator closed / task cancelled): charge what was produced.
            self._spawn(self._settle_abandoned(f, provider, pump, call, deltas))
            raise
        usage = pump.usage or f.estimate_usage(deltas)
        credits = f.cost(usage)
        charged = f.charge(credits)
        tail = renderer.usage(usage, charged) if f.req.include_usage else renderer.final_meta(charged)
        settle = self._settle_and_log(f, provider, usage, credits, finish)
        yield tail
        yield DONE
        await asyncio.shield(settle)

    async def _settle_abandoned(
        self, f: _Flight, provider: str, pump: UpstreamPump, call: ProviderCall, deltas: int
    ) -> None:
        drain = getattr(self.providers.get(provider), "drain_on_disconnect", True)
        usage = await pump.abandon(drain=drain, drain_seconds=DRAIN_TIMEOUT)
        if not drain and (call.progress.completion_tokens or call.progress.prompt_tokens):
            p = call.progress
            usage = Usage(p.prompt_tokens, p.completion_tokens, p.reasoning_tokens, p.cached_tokens)
        usage = usage or f.estimate_usage(deltas)
        await self._settle_and_log(f, provider, usage, f.cost(usage), "client_disconnected", http_status=499)

    def _settle_and_log(
        self,
        f: _Flight,
        provider: str,
        usage: Usage,
        credits: int,
        finish: str | None,
        http_status: int = 200,
    ) -> asyncio.Future[int]:
        # The log row is queued with the settle (on SQLite: the same writer batch, so the row and
        # its charge commit together). Nothing here awaits: no client can cancel either of them.
        charged = f.charge(credits)
        self.recorder.record(
            model=f.prep.model,
            ident=f.ident,
            meta=f.meta,
            provider=provider,
            usage=usage,
            credits=charged,
            finish=finish,
            stream=f.stream,
            http_status=http_status,
        )
        settled = self.ledger.settle(f.ticket, credits=credits, description=f.prep.model.id)
        settled.add_done_callback(lambda fut: _check_settled(fut, f.ticket.inference_id, charged))
        return settled

    # ---- failure -----------------------------------------------------------------------------

    async def _finish_failed(self, f: _Flight, provider: str, exc: BaseException) -> None:
        release = self._spawn(self.ledger.release(f.ticket))
        if isinstance(exc, GatewayError):
            status, message = exc.status_code, exc.message
        else:
            status = 499 if isinstance(exc, asyncio.CancelledError) else 500
            message = type(exc).__name__
        self.recorder.record(
            model=f.prep.model,
            ident=f.ident,
            meta=f.meta,
            provider=getattr(exc, "provider", None) or provider,
            usage=Usage(),
            credits=0,
            finish=None,
            stream=f.stream,
            http_status=status,
            error=message,
        )
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(release)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def drain_background(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def _check_settled(fut: asyncio.Future[int], inference_id: str, charged: int) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        log.error("settling hold %s failed: %r (released at the next start)", inference_id, exc)
    elif fut.result() != charged:
        log.warning("hold %s was already settled or released", inference_id)


def _first_finish(result: Completion) -> str | None:
    return result.choices[0].get("finish_reason") if result.choices else None


def _chunk_finish(chunk: Chunk) -> str | None:
    for c in chunk.choices:
        if c.get("finish_reason"):
            return str(c["finish_reason"])
    return None
