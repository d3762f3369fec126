"""``GET /metrics`` (Prometheus text format) and ``GET /ready`` (readiness for load balancers)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from modelgate.httpkit.deps import app_state
from modelgate.observability.health import readiness
from modelgate.observability.metrics import CONTENT_TYPE

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    m = app_state(request).extras.get("metrics")
    body = m.render() if m is not None else b""
    return Response(body, media_type=CONTENT_TYPE)


@router.get("/ready")
async def ready(request: Request) -> Response:
    if getattr(request.app.state, "draining", False):  # stopping (drain.py): the balancer moves away
        body = {"status": "draining", "checks": {"draining": True}}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    state = app_state(request)
    gw = state.core
    ok, checks = await readiness(
        engine=state.db.engine,
        limiter=state.extras.get("limiter"),
        router=gw.router,
        providers=gw.providers,
        redis_policy=state.settings.redis_failure_policy,
        ledger=gw.ledger,
    )
    body = {"status": "ready" if ok else "unavailable", "checks": checks}
    return Response(orjson.dumps(body), status_code=200 if ok else 503, media_type="application/json")
