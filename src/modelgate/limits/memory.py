"""In-process limits for a single instance (the default without ``MODELGATE_REDIS_URL``).

The event loop is single-threaded and ``acquire`` never awaits, so each decision is atomic.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from modelgate.limits.base import WINDOW, Decision, Invalidate, RateLimit, decide


class InMemoryLimiter:
    name = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.time, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        # key_id -> [window, req_prev, req_cur, tok_prev, tok_cur]
        self._state: dict[int, list[float]] = {}
        self._invalidate: Invalidate | None = None

    def _roll(self, key_id: int, window: int) -> list[float]:
        s = self._state.get(key_id)
        if s is None:
            if len(self._state) >= self._max_keys:
                self._state.clear()
            s = self._state[key_id] = [window, 0.0, 0.0, 0.0, 0.0]
        if s[0] != window:
            if s[0] == window - 1:
                s[1], s[3] = s[2], s[4]
            else:
                s[1], s[3] = 0.0, 0.0
            s[0], s[2], s[4] = window, 0.0, 0.0
        return s

    async def acquire(self, key_id: int, limits: RateLimit, *, tokens: int) -> Decision:
        now = self._clock()
        s = self._roll(key_id, int(now // WINDOW))
        d = decide(limits, now=now, req_prev=s[1], req_cur=s[2], tok_prev=s[3], tok_cur=s[4], tokens=tokens)
        if d.allowed:
            s[2] += 1
            s[4] += tokens
        return d

    async def adjust_tokens(self, key_id: int, window: int, delta: int) -> None:
        s = self._state.get(key_id)
        if s is None or not delta:
            return
        if s[0] == window:
            s[4] = max(0.0, s[4] + delta)
        elif s[0] == window + 1:
            s[3] = max(0.0, s[3] + delta)

    async def publish_invalidation(self, *, key_id: int | None = None, digest: str | None = None) -> None:
        if self._invalidate is not None:
            self._invalidate(key_id=key_id, digest=digest)

    async def start(self, invalidate: Invalidate, *, reset: Callable[[], None] | None = None) -> None:
        self._invalidate = invalidate

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._state.clear()
