"""Log-in throttling: at most ``limit`` failures per (email, client IP) in a sliding window.

Kept in process memory (per worker): it slows down password guessing against one account from one
address without adding a store dependency. With several workers the effective limit is
``limit * workers``; a Redis-backed limiter can replace this class behind the same two methods.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class LoginLimiter:
    limit: int = 5
    window: float = 15 * 60
    _failures: dict[tuple[str, str], deque[float]] = field(default_factory=dict)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, email: str, ip: str) -> int:
        """Seconds until another attempt is allowed (0 = allowed now)."""
        now = time.monotonic()
        q = self._recent((email.lower(), ip), now)
        if len(q) < self.limit:
            return 0
        return max(1, int(q[0] + self.window - now))

    def failed(self, email: str, ip: str) -> None:
        now = time.monotonic()
        self._recent((email.lower(), ip), now).append(now)
        if len(self._failures) > 100_000:
            self._failures.clear()

    def succeeded(self, email: str, ip: str) -> None:
        self._failures.pop((email.lower(), ip), None)
