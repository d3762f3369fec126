"""Exact cache entries in Redis (when ``MODELGATE_REDIS_URL`` is set): one key per entry,
``{prefix}cache:{namespace}:{key}``, holding the credits and the payload, expiring with the entry's
TTL. Semantic entries stay in the database (their vectors are searched there)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from modelgate.store.response_cache import CacheEntry, Found


class RedisCacheTable:
    def __init__(self, client: Any, *, prefix: str, timeout: float) -> None:
        self._redis = client
        self._prefix = f"{prefix}cache:"
        self._timeout = timeout

    def _key(self, namespace: str, key: str) -> str:
        return f"{self._prefix}{namespace}:{key}"

    async def get(self, namespace: str, key: str) -> Found | None:
        data = await asyncio.wait_for(self._redis.get(self._key(namespace, key)), self._timeout)
        if not data:
            return None
        credits, _, payload = bytes(data).partition(b"\n")
        return Found(payload, int(credits))

    async def nearest(
        self, namespace: str, prefix: str, guard: str, vector: bytes, threshold: float
    ) -> Found | None:
        return None  # semantic entries live in the database

    async def purge(self) -> int:
        return 0  # Redis expires its keys itself

    async def aclose(self) -> None:
        return None  # the client is the rate limiter's

    async def put(self, entry: CacheEntry) -> None:
        ttl_ms = max(int((entry.expires_at - time.time()) * 1000), 1)
        value = str(entry.credits).encode() + b"\n" + entry.payload
        await asyncio.wait_for(
            self._redis.set(self._key(entry.namespace, entry.key), value, px=ttl_ms), self._timeout
        )
