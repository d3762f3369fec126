"""Documentation pages generated from the catalogue: ``/docs``, ``/docs/models/{id}``, ``/docs-json``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from modelgate.catalog.kinds import KINDS
from modelgate.catalog.models import ModelSpec
from modelgate.errors import NotFoundError
from modelgate.httpkit.deps import app_state
from modelgate.money import usd_text
from modelgate.observability.model_metrics import ModelMetrics
from modelgate.web.openapi import model_openapi, request_schema, response_schema, schema_rows
from modelgate.web.render import render, unavailable_for_viewer, web_state
from modelgate.web.samples import example_response, js_sample, python_sample, sample_max_tokens
from modelgate.web.sessions import load_user

router = APIRouter(include_in_schema=False)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# The key scope each kind of model needs (the doors' checks).
MODEL_SCOPES = {
    "chat": "model:chat",
    "embedding": "model:embeddings",
    "image": "model:image",
    "speech": "model:speech",
    "transcription": "model:audio",
}


def _find(request: Request, model_id: str) -> ModelSpec:
    model = app_state(request).catalog.find(model_id)
    if model is None:
        raise NotFoundError(f"Model {model_id!r} not found", param="model", code="model_not_found")
    return model


def _unit_price(unit: dict[str, Any]) -> str:
    if unit["name"] == "character":
        return f"{usd_text(unit['price'] * 1_000_000)} per 1M characters"
    return f"{usd_text(unit['price'])} per {unit['name']}"


def _price(model: ModelSpec) -> str:
    p = model.pricing
    priced = KINDS[model.type].priced
    if priced == "input_tokens":
        return f"{usd_text(p.input_usd_per_mtok)} per 1M input tokens"
    if priced == "units":  # priced per unit (catalog/prices.py)
        return ", ".join(_unit_price(u) for u in p.units() if u["name"] != "token")
    return f"{usd_text(p.input_usd_per_mtok)} in / {usd_text(p.output_usd_per_mtok)} out per 1M tokens"


async def live_figures(request: Request, model_ids: set[str]) -> dict[str, dict[str, dict[str, float]]]:
    """The model's ``GET /models/metrics`` figures (the same numbers), empty when none."""
    live: ModelMetrics | None = app_state(request).extras.get("model_metrics")
    return await live.snapshot(model_ids) if live is not None else {}


@router.get("/docs")
async def docs_index(request: Request, q: str = "", capability: str = "", developer: str = "") -> Response:
    await load_user(request)
    catalog = app_state(request).catalog
    models = list(catalog.models)
    capabilities = sorted({c for m in models for c in m.capabilities})
    developers = sorted({str(m.info.get("developer", "")) for m in models})
    needle = q.strip().lower()
    shown: list[dict[str, Any]] = []
    for m in models:
        haystack = " ".join(
            [m.id, *m.aliases, str(m.info.get("name", "")), str(m.info.get("description", ""))]
        )
        if needle and needle not in haystack.lower():
            continue
        if capability and capability not in m.capabilities:
            continue
        if developer and m.info.get("developer") != developer:
            continue
        shown.append(
            {
                "model": m,
                "price": _price(m),
                "unavailable": unavailable_for_viewer(request, catalog.unavailable_reason(m)),
            }
        )
    return render(
        request,
        "docs_index.html",
        {
            "models": shown,
            "total": len(models),
            "capabilities": capabilities,
            "developers": developers,
            "q": q,
            "capability": capability,
            "developer": developer,
            "page": "docs",
        },
    )


@router.get("/docs/models/{model_id:path}")
async def docs_model(request: Request, model_id: str) -> Response:
    await load_user(request)
    model = app_state(request).catalog.find(model_id)
    if model is None:
        return render(
            request,
            "error.html",
            {
                "title": "Model not found",
                "back": "/docs",
                "page": "docs",
                "message": f"There is no model {model_id!r} in this catalogue.",
            },
            status_code=404,
        )
    base = base_url(request)
    doc = model_openapi(web_state(request).openapi_template(model.type), model, base)
    req = request_schema(doc)
    return render(
        request,
        "docs_model.html",
        {
            "model": model,
            "base": base,
            "price": _price(model),
            "unavailable": unavailable_for_viewer(
                request, app_state(request).catalog.unavailable_reason(model)
            ),
            "scope": MODEL_SCOPES.get(model.type, "model:chat"),
            "reasoning": "reasoning" in model.capabilities,
            "max_tokens": sample_max_tokens(model),
            "request_rows": schema_rows(req),
            "response_rows": schema_rows(response_schema(doc), max_depth=1),
            "python": python_sample(base, model),
            "javascript": js_sample(base, model),
            "example": json.dumps(example_response(model), indent=2, ensure_ascii=False),
            "live": (await live_figures(request, {model.id})).get(model.id),
            "live_window": app_state(request).settings.model_metrics_window,
            "page": "docs",
        },
    )


@router.get("/docs-json")
async def docs_json(request: Request, model: str) -> Response:
    spec = _find(request, model)
    template = web_state(request).openapi_template(spec.type)
    return JSONResponse(model_openapi(template, spec, base_url(request)))
