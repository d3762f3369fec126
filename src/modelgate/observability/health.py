"""Readiness: can this instance serve? Database, Redis (when configured), providers."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text


async def check_database(engine: Any) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(2.0):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True, "ok"
    except Exception as exc:
        return False, type(exc).__name__


async def readiness(
    *, engine: Any, limiter: Any, router: Any, providers: dict[str, Any]
) -> tuple[bool, dict[str, Any]]:
    """``(ready, details)``: ready when the database (and Redis, if used) answer and at least one
    provider is usable (its circuit breaker is not open and, for providers with ``ready()``, it
    says so: the local model once loaded)."""
    db_ok, db_msg = await check_database(engine)
    checks: dict[str, Any] = {"database": db_msg}
    ok = db_ok
    if limiter is not None and getattr(limiter, "name", "") == "redis":
        try:
            async with asyncio.timeout(2.0):
                redis_ok = await limiter.ping()
        except TimeoutError:
            redis_ok = False
        checks["redis"] = "ok" if redis_ok else "unreachable"
        ok = ok and redis_ok
    prov: dict[str, str] = {}
    for name, p in providers.items():
        state = router.breaker_state(name) if router is not None else "closed"
        ready = getattr(p, "ready", None)
        if state == "open":
            prov[name] = "circuit_open"
        elif callable(ready):
            try:
                r = ready()
                if asyncio.iscoroutine(r):
                    r = await r
                prov[name] = "ok" if r else "starting"
            except Exception as exc:
                prov[name] = type(exc).__name__
        else:
            prov[name] = "ok"
    checks["providers"] = prov
    if providers and not any(v == "ok" for v in prov.values()):
        ok = False
    return ok, checks
