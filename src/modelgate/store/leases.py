"""Leases: room an instance reserves in PostgreSQL ahead of need, so that it can keep admitting
requests while the database is unreachable without ever spending room it does not hold
(docs/deploy.md "Riding out a database outage").

A lease is a hold row like any request's (``holds``, ``inference_id`` ``lease:<owner>:<n>``, owned
by the instance): taken through the same guarded statement, it counts against the account's
balance, the key's period limit and every budget bucket of the key, so no other instance can spend
that room. One lease per API key in use, sized from the key's recent spend
(``rate x MODELGATE_LEASE_SECONDS`` plus a few of its largest holds) and capped at
``MODELGATE_LEASE_FRACTION`` of the room left at that moment (none when that is less than two of its
largest holds).

In normal operation nothing on the request path changes: every request takes its own hold in the
database. Only when the hold cannot be written (the database unreachable, ``DatabaseUnavailable``)
is the request admitted against its key's lease, here, in memory (``draw``); what it then costs is
journaled on local disk (``outage_journal.py``) and carved out of the lease when the database is
back. This module is the in-memory book: which leases exist, what was drawn on them, what each key
spends, and how large a lease it deserves. The database side lives in ``ledger_pg.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelgate.store.keys import KeyIdentity
from modelgate.store.ledger import split_buckets

LEASE_PREFIX = "lease:"
RENEW_AFTER = 600.0  # seconds: a lease is returned and taken anew (a hold older than 1 h is swept)
COOL_DOWN = 60.0  # seconds without a lease for a key whose leases were returned at a refusal
HOLDS_OF_MARGIN = 4  # a lease covers this many of the key's largest holds on top of its spend rate
HEADROOM = 1.5  # a lease is taken this much larger than wanted, and renewed once it is less than that
SMOOTHING = 0.3  # weight of the latest interval in the spend rate (an exponential moving average)


@dataclass(slots=True)
class Lease:
    id: str
    account_id: int
    key_id: int
    period: str | None
    budgets: str | None
    limit: int | None
    credits: int  # reserved in the database
    taken_at: float = field(default_factory=time.monotonic)
    wanted: int = 0  # what its key wanted when it was taken (before the headroom and the room cap)
    drawn: int = 0  # held or charged on it while the database was unreachable
    flights: int = 0  # requests admitted on it, not yet settled or released

    @property
    def left(self) -> int:
        return self.credits - self.drawn

    @property
    def limited(self) -> bool:
        return self.period is not None or self.budgets is not None


@dataclass(slots=True)
class LeaseBook:
    """What this instance leases, and the spend it sizes the leases from."""

    owner: int
    horizon: float  # seconds of a key's spend a lease covers (MODELGATE_LEASE_SECONDS)
    fraction: float  # the most of the room left a lease may take (MODELGATE_LEASE_FRACTION)
    leases: dict[int, Lease] = field(default_factory=dict)  # key id -> its lease
    idents: dict[int, KeyIdentity] = field(default_factory=dict)  # key id -> its latest identity
    spent: dict[int, int] = field(default_factory=dict)  # key id -> charged since the last tick
    largest: dict[int, int] = field(default_factory=dict)  # key id -> its largest recent hold
    rate: dict[int, float] = field(default_factory=dict)  # key id -> credits per second
    cooling: dict[int, float] = field(default_factory=dict)  # key id -> no lease before (monotonic)
    _count: int = 0
    _last_tick: float = field(default_factory=time.monotonic)

    # ---- the request path (a few dict operations) ---------------------------------------------

    def seen(self, ident: KeyIdentity) -> None:
        self.idents[ident.key_id] = ident

    def charged(self, key_id: int | None, held: int, charge: int) -> None:
        if key_id is None:
            return
        self.spent[key_id] = self.spent.get(key_id, 0) + charge
        if held > self.largest.get(key_id, 0):
            self.largest[key_id] = held

    def draw(self, ident: KeyIdentity, period: str | None, budgets: str | None, credits: int) -> Lease | None:
        """Admit a hold of ``credits`` on the key's lease (the database is unreachable), or None
        when the key has none, it does not cover the hold, or it was taken for other limits (the
        key's limit period or its budgets changed since)."""
        lease = self.leases.get(ident.key_id)
        if lease is None or lease.left < credits or lease.period != period or lease.budgets != budgets:
            return None
        lease.drawn += credits
        lease.flights += 1
        return lease

    def settled(self, lease: Lease, *, held: int, charge: int) -> None:
        """A request admitted on ``lease`` cost ``charge`` (its hold of ``held`` is replaced)."""
        lease.drawn += charge - held
        lease.flights -= 1

    # ---- the keeper (in the background) ---------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Fold the spend since the last tick into each key's rate."""
        now = time.monotonic() if now is None else now
        dt = max(now - self._last_tick, 1e-3)
        self._last_tick = now
        spent, self.spent = self.spent, {}
        for key_id in set(self.rate) | set(spent):
            latest = spent.get(key_id, 0) / dt
            rate = SMOOTHING * latest + (1 - SMOOTHING) * self.rate.get(key_id, latest)
            if key_id not in spent and rate * self.horizon < max(self.largest.get(key_id, 0), 1):
                # Less than one hold over the horizon, and nothing this round: the key is quiet.
                self.rate.pop(key_id, None)
                self.largest.pop(key_id, None)
                continue
            self.rate[key_id] = rate

    def wanted(self, key_id: int) -> int:
        """The lease this key deserves before the room cap: its spend over the horizon and a few of
        its largest holds (what requests in flight hold on top of what they cost)."""
        rate = self.rate.get(key_id, 0.0)
        if rate <= 0:
            return 0
        return math.ceil(rate * self.horizon) + HOLDS_OF_MARGIN * self.largest.get(key_id, 0)

    def size(self, key_id: int, room: int) -> int:
        """The lease to take with ``room`` left (the least room of the balance, the key's limit and
        its budgets): ``HEADROOM`` x what it wants (so that a rate going up a little does not renew
        it at once), at most ``fraction`` of the room, and none when that is less than two holds."""
        cap = int(room * self.fraction)
        want = min(math.ceil(self.wanted(key_id) * HEADROOM), cap)
        return want if want >= 2 * max(self.largest.get(key_id, 0), 1) else 0

    def new_id(self) -> str:
        self._count += 1
        return f"{LEASE_PREFIX}{self.owner:x}:{self._count}"

    def sharing(self, account_id: int, budgets: str | None) -> list[Lease]:
        """The leases that hold room a hold of this account (and these budget buckets) could use."""
        ids = {b for b, _ in split_buckets(budgets)}
        return [
            lease
            for lease in self.leases.values()
            if lease.account_id == account_id or ids & {b for b, _ in split_buckets(lease.budgets)}
        ]

    def cool(self, leases: Iterable[Lease], now: float | None = None) -> None:
        until = (time.monotonic() if now is None else now) + COOL_DOWN
        for lease in leases:
            self.cooling[lease.key_id] = until

    def cooled(self, key_id: int, now: float) -> bool:
        return self.cooling.get(key_id, 0.0) <= now

    def held(self) -> int:
        return sum(lease.credits for lease in self.leases.values())


_ACCOUNT_ROOM = text("SELECT balance_credits, postpaid FROM accounts WHERE id = :a AND NOT disabled")
_KEY_ROOM = text("SELECT spent_credits + held_credits FROM key_spend WHERE key_id = :k AND period = :p")
_BUDGET_ROOM = text(
    "SELECT b.limit_credits - coalesce((SELECT s.spent_credits + s.held_credits FROM budget_spend s"
    " WHERE s.budget_id = b.id AND s.period = :p), 0) FROM budgets b WHERE b.id = :b"
)


async def room_left(
    engine: AsyncEngine,
    *,
    account_id: int,
    key_id: int,
    period: str | None,
    limit: int | None,
    budgets: str | None,
) -> int:
    """The least room a hold of this key has: the balance (unbounded when postpaid), the key's
    period limit, each budget bucket. 0 when the account is disabled."""
    async with engine.connect() as conn:
        acc = (await conn.execute(_ACCOUNT_ROOM, {"a": account_id})).first()
        if acc is None:
            return 0
        rooms = [] if acc[1] else [int(acc[0])]
        if limit is not None and period is not None:
            used = (await conn.execute(_KEY_ROOM, {"k": key_id, "p": period})).scalar()
            rooms.append(limit - int(used or 0))
        for budget_id, bucket in split_buckets(budgets):
            left = (await conn.execute(_BUDGET_ROOM, {"b": budget_id, "p": bucket})).scalar()
            if left is not None:
                rooms.append(int(left))
    return max(0, min(rooms)) if rooms else 2**62
