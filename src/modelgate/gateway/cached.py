"""The metered core's response-cache steps (docs/cache.md), kept beside ``gateway/core.py``: ask the
cache for an admitted request, settle a hit at its price, replay a cached stream, keep an answer.

    admit → hold → cache.find ── hit ──▶ settle at the hit's price, log (hit:kind, saved) → answer
                       └── miss ──▶ route → settle → log → cache.store (whole answers, whole streams)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from modelgate.cache.codec import Whole
from modelgate.gateway.metered import Event, MeteredStream, Outcome, Settled
from modelgate.providers.base import Usage

if TYPE_CHECKING:
    from modelgate.cache.stage import Hit, ResponseCache
    from modelgate.gateway.bodies import BodyLog
    from modelgate.gateway.flight import Flight

CACHE = "cache"  # the provider of an answer served from the response cache


class CacheSteps:
    cache: ResponseCache | None
    bodies: BodyLog

    def _keep_bodies(self, f: Flight, answer: Any) -> None:
        raise NotImplementedError

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        raise NotImplementedError

    def _landed(self) -> None:
        raise NotImplementedError

    def _settle_and_log(
        self, f: Flight, provider: str, usage: Usage, credits: int, finish: str | None
    ) -> asyncio.Future[int]:
        raise NotImplementedError

    def _asks_cache(self, f: Flight) -> bool:
        """Whether the admitted request asked the response cache (no await when it did not)."""
        cache = self.cache
        if cache is None or f.req.cache is None:
            return False
        caller = f.meta.caller
        f.lookup = cache.plan(
            f.req.cache,
            door=caller.door,
            model=f.prep.model.id,
            stream=f.req.stream,
            n=f.req.n,
            account_id=caller.ident.account_id,
            mode=caller.cache_mode,
            ttl=caller.cache_ttl,
            key_mode=caller.ident.cache_mode,
        )
        return f.lookup is not None

    async def _cached(self, f: Flight) -> Hit | None:
        """The response cache's answer to a request that asked it (``_asks_cache``)."""
        lookup = f.lookup
        assert self.cache is not None and lookup is not None
        hit = await self.cache.find(lookup)
        f.meta.cache = f"hit:{hit.kind}" if hit is not None else f"miss:{lookup.mode}"
        return hit

    def _settle_hit(self, f: Flight, hit: Hit, usage: Usage, finish: str | None) -> int:
        """Charge a cache hit its price (an operator's percentage of what the answer cost; 0 by
        default) and log what it saved."""
        assert self.cache is not None
        price = self.cache.price(hit.credits)
        f.meta.cache_saved = max(hit.credits - price, 0)
        self._settle_and_log(f, CACHE, usage, price, finish)
        return price

    def _keep(self, f: Flight, answer: Outcome | list[Event], credits: int) -> None:
        # An invocation may refuse (``cacheable`` False: a stored Responses answer passed through).
        if self.cache is not None and f.lookup is not None and getattr(f.req.invocation, "cacheable", True):
            kept = answer if isinstance(answer, list) else Whole(answer.payload, answer.usage, answer.finish)
            self.spawn(self.cache.store(f.lookup, kept, credits))

    def _replay(self, f: Flight, hit: Hit) -> MeteredStream:
        """A cached stream, replayed event by event; its price is charged at once (whatever the
        client reads of it)."""
        assert isinstance(hit.answer, list)
        events = [Event(p.payload, p.usage, p.finish, p.output) for p in hit.answer]
        usage = next((e.usage for e in reversed(events) if e.usage is not None), None) or Usage()
        finish = next((e.finish for e in reversed(events) if e.finish), None)
        try:
            price = self._settle_hit(f, hit, usage, finish)
            if self.bodies.enabled:
                self._keep_bodies(f, [e.payload for e in events])
        finally:
            self._landed()

        async def replay() -> AsyncIterator[Event | Settled]:
            for event in events:
                yield event
            yield Settled(usage=usage, credits=price, finish=finish)

        headers = dict(f.meta.rate_headers or {})
        return MeteredStream(CACHE, f.prep.model, headers, replay(), cache=f.meta.cache)
