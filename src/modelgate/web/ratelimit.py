"""Throttles for the anonymous forms: in process memory, or shared through Redis when configured.

- Log-in: at most ``limit`` failures per (email, client IP) and ``ip_limit`` failures per client IP
  across all emails, in a sliding window. The first slows down guessing one account's password; the
  second, guessing many accounts' passwords from one address (a success clears only its own
  (email, IP) count, so logging in to one's own account does not reset the address's count).
- Sign-up: at most ``limit`` accounts created per client IP in a window.

The counts live in a ``Windows`` store. ``MemoryWindows`` (the default) counts per worker: with
several workers or instances the effective limits are multiplied by their number. With Redis
(``MODELGATE_REDIS_URL``), ``RedisWindows`` keeps one sorted set of attempt times per counted key
(``<prefix>web:<name>:<sha256 of the key>``: no email or address in Redis), timed by Redis' own
clock, so every worker and instance shares the same limits. If Redis does not answer within
``MODELGATE_REDIS_TIMEOUT``, the worker counts in its own memory meanwhile (logged), rather than
refusing or failing the form.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("modelgate.web")

MAX_TRACKED = 100_000


class Windows(Protocol):
    """Event times per (name, key) in a sliding window."""

    async def retry_after(self, name: str, key: str, *, limit: int, window: float) -> int:
        """Seconds until another event is allowed (0 = allowed now)."""
        ...

    async def add(self, name: str, key: str, *, window: float) -> None: ...

    async def clear(self, name: str, key: str) -> None: ...


@dataclass
class SlidingWindow:
    """Events per key in the last ``window`` seconds."""

    limit: int
    window: float
    _events: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._events.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, key: str) -> int:
        """Seconds until another event is allowed (0 = allowed now)."""
        now = time.monotonic()
        q = self._recent(key, now)
        if len(q) < self.limit:
            if not q:
                self._events.pop(key, None)
            return 0
        return max(1, int(q[0] + self.window - now))

    def add(self, key: str) -> None:
        now = time.monotonic()
        if len(self._events) > MAX_TRACKED:
            self._events.clear()
        self._recent(key, now).append(now)

    def clear(self, key: str) -> None:
        self._events.pop(key, None)


class MemoryWindows:
    """This worker's own counts."""

    def __init__(self) -> None:
        self._windows: dict[str, SlidingWindow] = {}

    def _window(self, name: str, limit: int, window: float) -> SlidingWindow:
        w = self._windows.get(name)
        if w is None:
            w = self._windows[name] = SlidingWindow(limit, window)
        w.limit, w.window = limit, window
        return w

    async def retry_after(self, name: str, key: str, *, limit: int, window: float) -> int:
        return self._window(name, limit, window).retry_after(key)

    async def add(self, name: str, key: str, *, window: float) -> None:
        w = self._windows.get(name) or self._window(name, 1, window)
        w.add(key)

    async def clear(self, name: str, key: str) -> None:
        w = self._windows.get(name)
        if w is not None:
            w.clear(key)


# KEYS[1]: the sorted set; ARGV: limit, window seconds. Returns the seconds to wait (0: allowed).
_RETRY_AFTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local win = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then return 0 end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.floor(tonumber(first[2]) + win - now))
"""
# KEYS[1]: the sorted set; ARGV: window seconds, a unique member.
_ADD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])))
return 1
"""


class RedisWindows:
    """Counts shared by every worker and instance through Redis; this worker's memory while Redis
    does not answer."""

    def __init__(self, redis: Any, *, prefix: str, timeout: float = 0.5) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timeout = timeout  # seconds a form waits for Redis before counting in memory instead
        self._retry_after = redis.register_script(_RETRY_AFTER)
        self._add = redis.register_script(_ADD)
        self.fallback = MemoryWindows()

    def _key(self, name: str, key: str) -> str:
        return f"{self._prefix}web:{name}:{hashlib.sha256(key.encode('utf-8')).hexdigest()}"

    def _failed(self, exc: Exception) -> None:
        log.warning(
            "form limits: Redis unavailable (%s); counting in this worker meanwhile", type(exc).__name__
        )

    async def retry_after(self, name: str, key: str, *, limit: int, window: float) -> int:
        try:
            async with asyncio.timeout(self._timeout):
                return int(await self._retry_after(keys=[self._key(name, key)], args=[limit, window]))
        except Exception as exc:
            self._failed(exc)
            return await self.fallback.retry_after(name, key, limit=limit, window=window)

    async def add(self, name: str, key: str, *, window: float) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._add(keys=[self._key(name, key)], args=[math.ceil(window), secrets.token_hex(8)])
        except Exception as exc:
            self._failed(exc)
            await self.fallback.add(name, key, window=window)

    async def clear(self, name: str, key: str) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.delete(self._key(name, key))
        except Exception as exc:
            self._failed(exc)
        await self.fallback.clear(name, key)


@dataclass
class LoginLimiter:
    limit: int = 5
    ip_limit: int = 20
    window: float = 15 * 60
    store: Windows = field(default_factory=MemoryWindows)

    @staticmethod
    def _pair(email: str, ip: str) -> str:
        return f"{email.lower()}\n{ip}"

    async def retry_after(self, email: str, ip: str) -> tuple[int, str]:
        """Seconds until another attempt is allowed (0 = now), and which limit applies
        (``"email"`` or ``"ip"``)."""
        by_ip = await self.store.retry_after("login-ip", ip, limit=self.ip_limit, window=self.window)
        if by_ip:
            return by_ip, "ip"
        pair = self._pair(email, ip)
        return await self.store.retry_after("login", pair, limit=self.limit, window=self.window), "email"

    async def failed(self, email: str, ip: str) -> None:
        await self.store.add("login", self._pair(email, ip), window=self.window)
        await self.store.add("login-ip", ip, window=self.window)

    async def succeeded(self, email: str, ip: str) -> None:
        await self.store.clear("login", self._pair(email, ip))


@dataclass
class SignUpLimiter:
    limit: int = 10
    window: float = 60 * 60
    store: Windows = field(default_factory=MemoryWindows)

    async def retry_after(self, ip: str) -> int:
        return await self.store.retry_after("signup", ip, limit=self.limit, window=self.window)

    async def attempted(self, ip: str) -> None:
        await self.store.add("signup", ip, window=self.window)
