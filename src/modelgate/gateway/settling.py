"""The metered core's settling steps, kept beside ``gateway/core.py``: every exit of an admitted
request ends its hold exactly once, and leaves its log row.

    success ───────────────▶ settle to the real usage + log row (queued together, never awaited
                             by the client: a cancelled caller cannot skip them)
    failure ───────────────▶ release + log row
    client left a stream ──▶ drain the upstream for its usage (or the live counts) → settle (499)
    failed after output ───▶ settle to the last reported usage + the output since, estimated
    cancelled whole answer ─▶ settle to the adapter's live counts when exact, else release
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from modelgate.errors import GatewayError
from modelgate.gateway.bodies import BodyLog
from modelgate.gateway.flight import Flight, LiveUsage
from modelgate.gateway.holds import HoldPolicy
from modelgate.gateway.recorder import RequestRecorder
from modelgate.gateway.streaming import UpstreamPump
from modelgate.providers.base import Provider, Usage
from modelgate.store.ledger import LedgerBase

log = logging.getLogger("modelgate.gateway")

DRAIN_TIMEOUT = 120.0  # seconds an abandoned stream's upstream is read on for its usage


class SettleSteps:
    recorder: RequestRecorder
    ledger: LedgerBase
    hold_policy: HoldPolicy
    providers: dict[str, Provider]
    write_wait: float | None
    bodies: BodyLog

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        raise NotImplementedError

    def _keep_bodies(self, f: Flight, answer: Any) -> None:
        raise NotImplementedError

    def _drains(self, provider: str) -> bool:
        p = self.providers.get(provider)
        return True if p is None else p.drain_on_disconnect

    def _settle_and_log(
        self,
        f: Flight,
        provider: str,
        usage: Usage,
        credits: int,
        finish: str | None,
        http_status: int = 200,
        error: str | None = None,
    ) -> asyncio.Future[int]:
        # The log row is queued with the settle (on SQLite: the same writer batch, so the row and
        # its charge commit together). Nothing here awaits: no client can cancel either of them.
        charged = f.charge(credits)
        f.learned(self.hold_policy, provider, usage)  # what the next holds know (gateway/holds.py)
        settling = f.meta.trace.settle(charged) if f.meta.trace is not None else None
        self.recorder.record(
            model=f.prep.model.id,
            meta=f.meta,
            provider=provider,
            usage=usage,
            credits=charged,
            finish=finish,
            stream=f.req.stream,
            http_status=http_status,
            error=error,
            tier=f.prep.model.pricing.tier_of(usage.prompt_tokens) if f.prep.model.pricing.tiers else 0,
            overage=charged - f.ticket.credits,
        )
        settled = self.ledger.settle(f.ticket, credits=credits, description=f.prep.model.id)
        settled.add_done_callback(lambda fut: _check_settled(fut, f.ticket.inference_id, charged))
        if settling is not None:
            settled.add_done_callback(lambda _: settling.end())
        return settled

    async def _finish_failed(self, f: Flight, provider: str, exc: BaseException) -> None:
        if self.bodies.enabled:  # body logging: the prompt of a request that got no answer
            self._keep_bodies(f, None)
        release = self.spawn(self.ledger.release(f.ticket))
        if isinstance(exc, GatewayError):
            status, message = exc.status_code, exc.message
        else:
            status = 499 if isinstance(exc, asyncio.CancelledError) else 500
            message = type(exc).__name__
        self.recorder.record(
            model=f.prep.model.id,
            meta=f.meta,
            provider=getattr(exc, "provider", None) or provider,
            usage=Usage(),
            credits=0,
            finish=None,
            stream=f.req.stream,
            http_status=status,
            error=message,
        )
        with contextlib.suppress(asyncio.CancelledError):
            await self._written(release)

    async def _written(self, write: asyncio.Future[Any]) -> None:
        """Wait for a settle or release to commit, at most ``write_wait`` seconds (it goes on,
        and is retried until it commits, whether or not anybody waits)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(write), self.write_wait)

    async def _settle_abandoned(self, f: Flight, provider: str, pump: UpstreamPump, live: LiveUsage) -> None:
        """A stream whose client left: charge what the upstream produced (drained for its usage,
        or the adapter's live counts, or every event produced counted)."""
        usage = await pump.abandon(drain=self._drains(provider), drain_seconds=DRAIN_TIMEOUT)
        if not pump.ended or usage is None:  # the drain was cut short, or there was none
            usage = self._known_usage(f, provider, pump, live)
        await self._settle_and_log(
            f, provider, usage, f.cost(usage, live.route), "client_disconnected", http_status=499
        )

    def _known_usage(self, f: Flight, provider: str, pump: UpstreamPump, live: LiveUsage) -> Usage:
        """What a stream that ended without the upstream's last word is charged: the adapter's live
        counts where they are exact (the local model); else the latest figures the upstream
        reported, in its events or to ``on_usage``, with the output since then estimated
        (``Flight.best_usage``); else an estimate of what was produced."""
        if not self._drains(provider):
            exact = live.produced()
            if exact is not None:
                return exact
        if live.usage is not None and (pump.usage is None or live.since() < pump.since):
            return f.best_usage(live.usage, live.since())
        if pump.usage is not None:
            return f.best_usage(pump.usage, pump.since)
        return f.estimate_usage(pump.produced)

    def _settle_cancelled(self, f: Flight, provider: str, live: LiveUsage) -> bool:
        """A cancelled whole answer from an adapter with exact live counts: charge what it produced."""
        usage = live.usage
        if self._drains(provider) or not (usage and usage.completion_tokens):
            return False
        self._settle_and_log(f, provider, usage, f.cost(usage, live.route), "cancelled", http_status=499)
        return True


def _check_settled(fut: asyncio.Future[int], inference_id: str, charged: int) -> None:
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        log.error("settling hold %s failed: %r (released at the next start)", inference_id, exc)
    elif fut.result() != charged:
        log.warning("hold %s was already settled or released", inference_id)
