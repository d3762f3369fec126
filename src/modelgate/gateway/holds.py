"""How much a request holds: an upper bound of its cost that is still tight.

The hold (``gateway/admission.py``) prices the door's prompt estimate in the dearest category it can
be billed in, at the tier it can reach, plus the output and per-use fees (``catalog/prices.py``
``hold_micro``). Two things the gateway knows make it tighter than the request alone allows:

- **What is in the upstream's prompt cache** (``CacheRecord``). A Messages door request marked with
  ``cache_control`` carries a ``CachePrefix``: at each block boundary, in the order Anthropic caches
  a prompt (tools, system, messages), a digest of the prompt up to it and its token estimate. When
  an answer reports cache reads or writes, the prefixes up to the request's breakpoints are
  recorded per account and route with the lifetime the markers asked for (5 minutes, 1 hour;
  counted from admission, so the record never outlives the upstream's entry), and the last one
  with the upstream's own token count. The next request whose prompt starts with a recorded,
  unexpired prefix holds that prefix as a cache **read** of the recorded size, and only the rest at
  the write price. The record lives in the process: another instance, or a restart, knows nothing
  and holds the dearest case.
- **How long the account's answers are** (``OutputRecord``). Output is held at the whole
  ``max_tokens`` until the account has answers on the model; then at twice the longest of its last
  16 answers (per choice), never less than ``MODELGATE_HOLD_OUTPUT_TOKENS`` (1,024) nor more than
  ``max_tokens``: an agent sends 32,000 or 128,000 where a turn produces hundreds.

Both can hold less than the request finally costs: a prefix evicted early, more output than held.
The overdraft rule (docs/pricing.md) then charges the whole cost; the request's overage is at most
``(max_tokens - held output tokens) x n`` at the output price of its tier, plus the recorded
prefix's tokens at the write price less the read price (plus what the prompt estimate missed).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from modelgate.providers.base import Usage

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
# The output hold policy (docs/pricing.md "Holds"): the least output per choice a learned hold
# covers (settings.py hold_output_tokens), and its margin over the longest recent answer.
DEFAULT_HOLD_OUTPUT_TOKENS = 1024
OUTPUT_MARGIN = 2


@dataclass(slots=True, frozen=True)
class CachePrefix:
    """Where a prompt can be cached: per block boundary ``(digest, tokens, ttl)`` in the upstream's
    cache order; ``ttl`` is the lifetime a ``cache_control`` marker on that block asks for (None:
    not a breakpoint). ``last`` is the index of the last breakpoint (nothing after it is cached)."""

    points: tuple[tuple[int, int, str | None], ...]
    last: int


# digest -> (expires at, tokens, lifetime in seconds)
_Entries = dict[int, tuple[float, int, float]]


@dataclass(slots=True)
class CacheRecord:
    """Prompt-cache prefixes recently written to (or read from) a route for an account, by digest."""

    max_entries: int = 100_000  # prefixes kept (~20 MB at most), the oldest routes dropped first
    _routes: dict[tuple[int, str, str], _Entries] = field(default_factory=dict)
    _size: int = 0

    def known(
        self, account: int, provider: str, model: str, prefix: CachePrefix, now: float
    ) -> tuple[int, int]:
        """``(estimate, tokens)`` of the longest unexpired recorded prefix of the prompt (up to its
        last breakpoint): the door's estimate of that prefix and the tokens recorded for it; (0, 0)
        when none is known."""
        entries = self._routes.get((account, provider, model))
        if not entries:
            return 0, 0
        points = prefix.points
        for i in range(prefix.last, -1, -1):
            found = entries.get(points[i][0])
            if found is not None and found[0] > now:
                return points[i][1], found[1]
        return 0, 0

    def note(
        self, account: int, provider: str, model: str, prefix: CachePrefix, usage: Usage, at: float
    ) -> None:
        """An answer to a request admitted at ``at`` reported its prompt cache in use: record its
        breakpoints (the last with the upstream's count), refresh the prefixes it read."""
        counted = usage.cached_tokens + usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
        if counted <= 0 or not prefix.points:
            return
        key = (account, provider, model)
        entries = self._routes.get(key)
        if entries is None:
            entries = self._routes[key] = {}
        points = prefix.points
        estimate = max(points[prefix.last][1], 1)
        before = len(entries)
        for i in range(prefix.last + 1):
            digest, tokens, ttl = points[i]
            if ttl is None:
                found = entries.get(digest)
                if found is not None and found[0] > at:  # read again: its lifetime starts over
                    entries[digest] = (at + found[2], found[1], found[2])
                continue
            seconds = TTL_SECONDS[ttl]
            # The last breakpoint holds what the upstream counted; earlier ones scale alike.
            size = counted if i == prefix.last else -(-tokens * counted // estimate)
            entries[digest] = (at + seconds, size, seconds)
        self._size += len(entries) - before
        if self._size > self.max_entries:
            self._evict(at)

    def _evict(self, now: float) -> None:
        for key in list(self._routes):
            entries = self._routes[key]
            live = {d: e for d, e in entries.items() if e[0] > now}
            self._size -= len(entries) - len(live)
            if live:
                self._routes[key] = live
            else:
                del self._routes[key]
        while self._size > self.max_entries // 2 and self._routes:
            oldest = next(iter(self._routes))  # the route recorded first (insertion order)
            self._size -= len(self._routes.pop(oldest))


@dataclass(slots=True)
class OutputRecord:
    """The output tokens per choice of an account's last ``window`` answers on each model."""

    window: int = 16
    max_keys: int = 20_000  # account-model pairs kept (~15 MB at most), the first recorded dropped
    _recent: dict[tuple[int, str], deque[int]] = field(default_factory=dict)

    def longest(self, account: int, model: str) -> int | None:
        recent = self._recent.get((account, model))
        return max(recent) if recent else None

    def note(self, account: int, model: str, tokens: int) -> None:
        key = (account, model)
        recent = self._recent.get(key)
        if recent is None:
            if len(self._recent) >= self.max_keys:
                del self._recent[next(iter(self._recent))]  # the account recorded first
            recent = self._recent[key] = deque(maxlen=self.window)
        recent.append(tokens)


@dataclass(slots=True)
class HoldPolicy:
    """What the gateway knows and decides beyond the request when it sizes a hold (one per core)."""

    # The least output tokens per choice a learned output hold covers; 0: always all of max_tokens.
    output_floor: int = DEFAULT_HOLD_OUTPUT_TOKENS
    record: CacheRecord = field(default_factory=CacheRecord)
    outputs: OutputRecord = field(default_factory=OutputRecord)

    def output(self, account: int, model: str, max_tokens: int) -> int:
        """Output tokens per choice to hold for a cap of ``max_tokens``: all of it until the account
        has answers on the model, then ``OUTPUT_MARGIN`` x the longest of its recent ones, at least
        ``output_floor``, at most ``max_tokens``."""
        if self.output_floor <= 0 or max_tokens <= self.output_floor:
            return max_tokens
        longest = self.outputs.longest(account, model)
        if longest is None:
            return max_tokens
        return min(max_tokens, max(self.output_floor, OUTPUT_MARGIN * longest))

    def prompt(
        self, account: int, provider: str, model: str, estimate: int, prefix: CachePrefix, now: float
    ) -> tuple[int, int]:
        """The prompt tokens to hold and how many of them as a cache read: a recorded prefix counts
        its recorded tokens in place of its estimate."""
        estimated, read = self.record.known(account, provider, model, prefix, now)
        return estimate - estimated + read, read

    def settled(
        self,
        account: int,
        provider: str,
        model: str,
        usage: Usage,
        *,
        choices: int,
        prefix: CachePrefix | None,
        at: float,
    ) -> None:
        """What an answer showed: its output per choice, and what the upstream cached."""
        if usage.completion_tokens:
            self.outputs.note(account, model, -(-usage.completion_tokens // max(choices, 1)))
        if prefix is not None:
            self.record.note(account, provider, model, prefix, usage, at)
