"""Readiness: can this instance serve? Database, Redis (when configured), providers."""

from __future__ import annotations

import asyncio
from typing import Any

from modelgate.store.db import ping


async def check_database(engine: Any) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(2.0):
            await ping(engine)
        return True, "ok"
    except Exception as exc:
        return False, type(exc).__name__


async def readiness(
    *,
    engine: Any,
    limiter: Any,
    router: Any,
    providers: dict[str, Any],
    redis_policy: str = "closed",
    ledger: Any = None,
) -> tuple[bool, dict[str, Any]]:
    """``(ready, details)``: ready when the database answers (and takes the ledger's writes),
    Redis too if used and requests depend on it (``redis_policy`` "closed"; with "open" an
    unreachable Redis is reported but the instance still serves, without rate limits), and at
    least one provider is usable (its circuit
    breaker is not open and, for providers with ``ready()``, it says so: the local model once
    loaded)."""
    db_ok, db_msg = await check_database(engine)
    if db_ok and ledger is not None and ledger.writes_failing():
        # Reads answer, writes do not (a SQLite file locked by another process, a full disk, a
        # PostgreSQL that refuses writes): requests would only get 503s.
        db_ok, db_msg = False, "writes failing"
    checks: dict[str, Any] = {"database": db_msg}
    ok = db_ok
    leases = getattr(ledger, "leases", None)
    if not db_ok and leases is not None and leases.book.held() > 0:
        # Riding out the outage on this instance's leases (docs/deploy.md): it still admits the keys
        # it holds leases for, so a balancer must keep routing to it, not drop every instance at once.
        checks["database"] = f"unreachable ({db_msg}; serving on leases, charges journaled)"
        ok = True
    if limiter is not None and getattr(limiter, "name", "") == "redis":
        try:
            async with asyncio.timeout(2.0):
                redis_ok = await limiter.ping()
        except TimeoutError:
            redis_ok = False
        if redis_ok:
            checks["redis"] = "ok"
        elif redis_policy == "open":
            checks["redis"] = "unreachable (serving without per-key rate limits: redis_failure_policy=open)"
        else:
            checks["redis"] = "unreachable"
            ok = False
    prov: dict[str, str] = {}
    for name, p in providers.items():
        state = router.breaker_state(name) if router is not None else "closed"
        if state == "open":
            prov[name] = "circuit_open"
            continue
        try:
            prov[name] = "ok" if p.ready() else "starting"
        except Exception as exc:
            prov[name] = type(exc).__name__
    checks["providers"] = prov
    if providers and not any(v == "ok" for v in prov.values()):
        ok = False
    return ok, checks
