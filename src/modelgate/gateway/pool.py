"""Pools: a model whose routes are several deployments (keys, regions, clouds) balanced per request.

A model with ``balance:`` in the catalogue treats its routes as the members of one pool. For each
request the router asks ``Pool.order`` for the members in the order to try them:

- ``weighted``: a weighted random order (``weight`` per route, default 1; 0 = only as a last resort);
- ``least_busy``: fewest requests in flight first (a stream counts until it ends);
- ``latency``: lowest latency first — an exponentially weighted mean of each member's time to its
  answer (whole answers) or first event (streams), as this gateway measured it; members not yet
  measured are tried first, so each gets measured;
- ``cost``: cheapest first by the route's price sheet (input + output price per million tokens;
  a route without its own ``pricing`` has the model's).

Ties are broken at random. Members are then filtered and demoted:

- **Rate limits the provider sets**: ``rpm`` (requests) and ``tpm`` (tokens, counted as the
  request's prompt estimate plus its output cap, as Azure counts them) per route, over a sliding
  minute. A member at its limit is not tried; when every member is, the request is refused with
  429 and ``Retry-After`` (never sent to exceed a provider's quota).
- **429s**: a member that answers 429 is not retried; the request moves on to the next member at
  once, and the member rests until its ``Retry-After`` (else 1 s) has passed — it goes last
  meanwhile. The client sees an error only when every member failed.
- **Health**: members whose circuit breaker is open (repeated failures) go last; the breaker's
  half-open trial brings them back (``gateway/router.py``).

State is per gateway process and in memory (it steers traffic; it does not bill). Books stay exact:
the answering route's price sheet charges the request (``ModelSpec.sheet(route)``).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from modelgate.catalog.models import ModelSpec, Route
from modelgate.errors import RateLimitError

WINDOW = 60.0
_EWMA = 0.3


@dataclass(slots=True)
class Member:
    in_flight: int = 0
    latency: float | None = None  # seconds, exponentially weighted
    resting_until: float = 0.0  # after a 429
    starts: deque[tuple[float, int]] = field(default_factory=deque)  # (time, tokens) in the window
    served: int = 0

    def used(self, now: float) -> tuple[int, int]:
        while self.starts and now - self.starts[0][0] >= WINDOW:
            self.starts.popleft()
        return len(self.starts), sum(t for _, t in self.starts)


def key(route: Route) -> tuple[str, str]:
    return route.provider, route.model


class Pool:
    """The per-member figures and the ordering policy (one per router)."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self.members: dict[tuple[str, str], Member] = {}

    def member(self, route: Route) -> Member:
        found = self.members.get(key(route))
        if found is None:
            found = self.members[key(route)] = Member()
        return found

    # ---- ordering --------------------------------------------------------------------------------

    def order(
        self, model: ModelSpec, routes: list[Route], *, unhealthy: Callable[[Route], bool]
    ) -> list[Route]:
        policy = model.balance
        now = self._clock()
        if policy == "weighted":
            ordered = self._weighted(routes)
        else:
            tie = {key(r): self._rng.random() for r in routes}
            if policy == "least_busy":
                ordered = sorted(routes, key=lambda r: (self.member(r).in_flight, tie[key(r)]))
            elif policy == "latency":
                ordered = sorted(routes, key=lambda r: (self._latency(r), tie[key(r)]))
            else:  # cost
                ordered = sorted(routes, key=lambda r: (_price(model, r), tie[key(r)]))
        # Resting (a recent 429) and unhealthy members last, in that order; the rest keep the policy's.
        return sorted(
            ordered,
            key=lambda r: (unhealthy(r), self.member(r).resting_until > now),
        )

    def _weighted(self, routes: list[Route]) -> list[Route]:
        left = list(routes)
        out: list[Route] = []
        while left:
            weights = [max(r.weight, 0) for r in left]
            total = sum(weights)
            if total <= 0:
                self._rng.shuffle(left)
                return out + left
            pick = self._rng.uniform(0, total)
            for i, w in enumerate(weights):
                pick -= w
                if pick <= 0 and w > 0:
                    out.append(left.pop(i))
                    break
            else:
                out.append(left.pop(max(range(len(left)), key=lambda j: weights[j])))
        return out

    def _latency(self, route: Route) -> float:
        seen = self.member(route).latency
        return -1.0 if seen is None else seen

    # ---- limits and accounting -------------------------------------------------------------------

    def take(self, route: Route, tokens: int) -> float | None:
        """Count a request against ``route``'s per-minute limits: None when it fits (counted), else
        the seconds until it would."""
        m = self.member(route)
        now = self._clock()
        count, used = m.used(now)
        rpm_full = route.rpm is not None and count + 1 > route.rpm
        tpm_full = route.tpm is not None and used + tokens > route.tpm and used > 0
        if rpm_full or tpm_full:
            return max(0.001, WINDOW - (now - m.starts[0][0])) if m.starts else WINDOW
        m.starts.append((now, tokens))
        return None

    def started(self, route: Route) -> float:
        self.member(route).in_flight += 1
        return self._clock()

    def finished(self, route: Route, started: float, *, ok: bool) -> None:
        m = self.member(route)
        m.in_flight = max(0, m.in_flight - 1)
        if ok:
            m.served += 1

    def answered(self, route: Route, started: float) -> None:
        """The member's answer (or first event) arrived: its latency sample."""
        m = self.member(route)
        sample = max(0.0, self._clock() - started)
        m.latency = sample if m.latency is None else (1 - _EWMA) * m.latency + _EWMA * sample

    def rate_limited(self, route: Route, retry_after: float | None) -> None:
        wait = retry_after if retry_after is not None and retry_after > 0 else 1.0
        self.member(route).resting_until = self._clock() + min(wait, WINDOW)


def saturated(model: ModelSpec, waits: list[float]) -> RateLimitError:
    wait = max(1, math.ceil(min(waits) if waits else WINDOW))
    return RateLimitError(
        f"every deployment of {model.id} is at its requests- or tokens-per-minute limit; retry after {wait}s",
        retry_after=wait,
    )


def _price(model: ModelSpec, route: Route) -> Decimal:
    sheet = model.sheet(route)
    return sheet.input_usd_per_mtok + sheet.output_usd_per_mtok
