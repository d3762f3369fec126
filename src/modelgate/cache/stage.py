"""The response cache as the metered core sees it: one object passed in, asked before the upstream
and told after it (docs/cache.md).

    plan(req, caller, model)   -> Lookup | None     no cache asked (header, key policy), or n > 1
    find(lookup)               -> Hit | None        exact entry, else (semantic) the nearest entry
    store(lookup, answer, credits)                  a whole answer or a complete stream, queued

The exact entries live in Redis when one is configured, else in the database's ``response_cache``
table; semantic entries (with their vectors) always in the database. A failing cache never fails a
request: a lookup that raises is a miss, a store that raises is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from modelgate.cache.codec import Piece, Whole, decode, encode_events, encode_whole
from modelgate.cache.policy import CacheAsk, CacheKey, CacheMode, cache_key, namespace_of
from modelgate.store.response_cache import CacheEntry, Found, pack_vector

log = logging.getLogger("modelgate.cache")

Embedder = Callable[[str], Awaitable[list[float]]]


class CacheTable(Protocol):
    async def get(self, namespace: str, key: str) -> Found | None: ...

    async def nearest(
        self, namespace: str, prefix: str, guard: str, vector: bytes, threshold: float
    ) -> Found | None: ...

    async def put(self, entry: CacheEntry) -> None: ...

    async def purge(self) -> int: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Lookup:
    mode: str  # exact | semantic
    key: CacheKey
    ttl: int
    door: str
    model: str
    stream: bool
    vector: bytes | None = None  # the last user turn's embedding, once computed


@dataclass(slots=True)
class Hit:
    kind: str  # exact | semantic
    answer: Whole | list[Piece]
    credits: int  # what the answer cost when it was made
    similarity: float = 1.0


@dataclass(slots=True, frozen=True)
class CacheConfig:
    mode: CacheMode = "off"  # when neither the header nor the key's policy says
    ttl: int = 3600
    hit_percent: float = 0.0  # a hit costs this percentage of what the answer cost (default: free)
    threshold: float = 0.9  # cosine similarity a semantic hit needs


class ResponseCache:
    def __init__(
        self,
        *,
        table: CacheTable,
        exact: CacheTable | None = None,
        embedder: Embedder | None = None,
        config: CacheConfig | None = None,
        metrics: Any = None,
    ) -> None:
        self.table = table
        self.exact = exact or table
        self.embedder = embedder
        self.config = config or CacheConfig()
        self.metrics = metrics

    def plan(
        self,
        ask: CacheAsk,
        *,
        door: str,
        model: str,
        stream: bool,
        n: int,
        account_id: int,
        mode: str | None,
        ttl: int | None,
        key_mode: str | None = None,
    ) -> Lookup | None:
        """What to look up for a request (None: the cache is not asked, or cannot serve it).
        ``mode``/``ttl``: the request's own (headers), else the key's policy, else the operator's."""
        mode = mode or key_mode or self.config.mode
        if mode == "off" or n > 1:
            return None
        if mode == "semantic" and self.embedder is None:
            mode = "exact"  # no embedding model configured: said in docs/cache.md
        key = cache_key(
            ask,
            door=door,
            model=model,
            stream=stream,
            namespace=namespace_of(account_id),
            semantic=mode == "semantic",
        )
        if key is None:
            return None
        return Lookup(mode, key, ttl or self.config.ttl, door, model, stream)

    async def find(self, lookup: Lookup) -> Hit | None:
        started = time.perf_counter()
        try:
            hit = await self._find(lookup)
        except Exception:
            log.warning("cache lookup failed (served as a miss)", exc_info=True)
            hit = None
        if self.metrics is not None:
            self.metrics.cache_lookup(
                lookup.mode,
                "hit" if hit else "miss",
                hit.kind if hit else None,
                time.perf_counter() - started,
            )
        return hit

    async def _find(self, lookup: Lookup) -> Hit | None:
        k = lookup.key
        found = await self.exact.get(k.namespace, k.key)
        kind = "exact"
        if found is None and k.prefix is not None and k.last_turn is not None and self.embedder is not None:
            lookup.vector = pack_vector(await self.embedder(k.last_turn))
            found = await self.table.nearest(
                k.namespace, k.prefix, k.guard, lookup.vector, self.config.threshold
            )
            kind = "semantic"
        if found is None:
            return None
        answer = decode(found.payload)
        if answer is None or isinstance(answer, list) != lookup.stream:
            return None
        return Hit(kind, answer, found.credits, found.similarity)

    def price(self, credits: int) -> int:
        """What a hit on an answer that cost ``credits`` costs."""
        return int(credits * self.config.hit_percent / 100) if self.config.hit_percent > 0 else 0

    async def store(self, lookup: Lookup, answer: Whole | list[Any], credits: int) -> None:
        """Keep a whole answer or a complete stream's events (never called for errors or partial
        streams)."""
        try:
            if isinstance(answer, list):
                payload = encode_events(answer)
            else:
                payload = encode_whole(answer.payload, answer.usage, answer.finish)
            if payload is None:
                return
            k = lookup.key
            entry = CacheEntry(
                namespace=k.namespace,
                key=k.key,
                door=lookup.door,
                model=lookup.model,
                payload=payload,
                credits=credits,
                expires_at=time.time() + lookup.ttl,
            )
            if self.exact is not self.table:
                await self.exact.put(entry)
            if k.prefix is not None and self.embedder is not None and k.last_turn is not None:
                if lookup.vector is None:
                    lookup.vector = pack_vector(await self.embedder(k.last_turn))
                entry.prefix, entry.guard, entry.vector = k.prefix, k.guard, lookup.vector
            elif self.exact is not self.table:
                return
            await self.table.put(entry)
        except Exception:
            log.warning("storing a cached answer failed", exc_info=True)
