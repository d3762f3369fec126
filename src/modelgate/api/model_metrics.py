"""``GET /models/metrics`` (aimlapi-specs/model-metrics.json): live latency percentiles per model.

No key is required. ``aliases`` (repeated, at most 100) keeps the models whose id or alias equals a
value exactly (no splitting on commas); any other query parameter is a 400. Figures come from
``observability/model_metrics.py``; ``alias`` is the model's catalogue id and ``endpoint`` the path
its type is served on.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from modelgate.catalog.models import ModelSpec
from modelgate.catalog.registry import Catalog
from modelgate.errors import InvalidRequestError
from modelgate.httpkit.contract import operation, query
from modelgate.httpkit.deps import app_state
from modelgate.observability.model_metrics import ModelMetrics

router = APIRouter()

MAX_ALIASES = 100


def wanted_models(request: Request, catalog: Catalog) -> set[str] | None:
    unknown = sorted(set(request.query_params) - {"aliases"})
    if unknown:
        raise InvalidRequestError(
            f"unknown query parameter(s): {', '.join(unknown)}; only aliases is accepted", param=unknown[0]
        )
    names = request.query_params.getlist("aliases")
    if not names:
        return None
    if len(names) > MAX_ALIASES:
        raise InvalidRequestError(f"aliases: at most {MAX_ALIASES} values", param="aliases")
    exact = set(names)
    return {m.id for m in catalog.models if m.id in exact or exact.intersection(m.aliases)}


def endpoint_of(model: ModelSpec) -> str:
    return model.endpoint_path


def now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@router.get(
    "/models/metrics",
    openapi_extra=operation(params=[query("aliases", description="model ids or aliases", many=True)]),
)
async def model_metrics(request: Request) -> Response:
    state = app_state(request)
    wanted = wanted_models(request, state.catalog)
    metrics: ModelMetrics | None = state.extras.get("model_metrics")
    window = metrics.window_seconds if metrics is not None else 0
    figures = await metrics.snapshot(wanted) if metrics is not None and wanted != set() else {}
    models = []
    for model_id, values in figures.items():
        model = state.catalog.find(model_id)
        if model is not None:
            models.append({"alias": model.id, "endpoint": endpoint_of(model), "metrics": values})
    body = {"window_seconds": window, "generated_at": now_iso(), "models": models}
    return Response(orjson.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"})
