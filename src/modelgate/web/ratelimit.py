"""Throttles for the anonymous forms, kept in process memory (per worker).

- Log-in: at most ``limit`` failures per (email, client IP) and ``ip_limit`` failures per client IP
  across all emails, in a sliding window. The first slows down guessing one account's password; the
  second, guessing many accounts' passwords from one address (a success clears only its own
  (email, IP) count, so logging in to one's own account does not reset the address's count).
- Sign-up: at most ``limit`` accounts created per client IP in a window.

With several workers the effective limits are multiplied by the number of workers; a Redis-backed
limiter can replace these classes behind the same methods.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

MAX_TRACKED = 100_000


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


@dataclass
class LoginLimiter:
    limit: int = 5
    ip_limit: int = 20
    window: float = 15 * 60
    _pairs: SlidingWindow = field(init=False)
    _ips: SlidingWindow = field(init=False)

    def __post_init__(self) -> None:
        self._pairs = SlidingWindow(self.limit, self.window)
        self._ips = SlidingWindow(self.ip_limit, self.window)

    @staticmethod
    def _pair(email: str, ip: str) -> str:
        return f"{email.lower()}\n{ip}"

    def retry_after(self, email: str, ip: str) -> tuple[int, str]:
        """Seconds until another attempt is allowed (0 = now), and which limit applies
        (``"email"`` or ``"ip"``)."""
        by_ip = self._ips.retry_after(ip)
        if by_ip:
            return by_ip, "ip"
        return self._pairs.retry_after(self._pair(email, ip)), "email"

    def failed(self, email: str, ip: str) -> None:
        self._pairs.add(self._pair(email, ip))
        self._ips.add(ip)

    def succeeded(self, email: str, ip: str) -> None:
        self._pairs.clear(self._pair(email, ip))


@dataclass
class SignUpLimiter:
    limit: int = 10
    window: float = 60 * 60
    _ips: SlidingWindow = field(init=False)

    def __post_init__(self) -> None:
        self._ips = SlidingWindow(self.limit, self.window)

    def retry_after(self, ip: str) -> int:
        return self._ips.retry_after(ip)

    def attempted(self, ip: str) -> None:
        self._ips.add(ip)
