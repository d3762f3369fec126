"""Catalogue endpoints: ``GET /v1/models`` (also ``/models``) and ``GET /model/{id}`` (models.json).

No key is required. Filters: several values of one parameter are OR-ed (comma-separated or
repeated), several parameters are AND-ed; values are case-insensitive; ``id`` matches aliases.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from modelgate.api.deps import app_state
from modelgate.catalog.models import ModelSpec
from modelgate.catalog.registry import Catalog
from modelgate.errors import NotFoundError

router = APIRouter()

SECTIONS = ("pricing", "modalities", "capabilities")


def _values(request: Request, name: str) -> list[str]:
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out.extend(v.strip().lower() for v in raw.split(",") if v.strip())
    return out


def _sections(request: Request) -> set[str]:
    wanted = set(_values(request, "include"))
    if "all" in wanted or (request.query_params.get("details") or "").lower() in ("true", "1"):
        return set(SECTIONS)
    return wanted & set(SECTIONS)


def model_item(model: ModelSpec, sections: set[str], catalog: Catalog, base_url: str) -> dict[str, Any]:
    info = dict(model.info)
    info.setdefault("docsUrl", f"{base_url}/docs/models/{model.id}")
    info.setdefault("docsJson", f"{base_url}/docs-json?model={model.id}")
    item: dict[str, Any] = {
        "id": model.id,
        "info": info,
        "type": model.endpoint_type,
        "aliases": list(model.aliases),
        "tags": list(model.tags),
    }
    reason = catalog.unavailable_reason(model)
    item["available"] = reason is None
    if reason:
        item["unavailable_reason"] = reason
    if "modalities" in sections:
        item["modalities"] = {"input": model.modalities.input, "output": model.modalities.output}
    if "capabilities" in sections:
        item["capabilities"] = sorted(model.capabilities)
    if "pricing" in sections:
        p = model.pricing
        units = [
            {"name": "token", "measure": "input", "price": p.input_usd_per_mtok, "per": 1_000_000},
            {"name": "token", "measure": "output", "price": p.output_usd_per_mtok, "per": 1_000_000},
        ]
        if p.cached_input_usd_per_mtok is not None:
            units.append(
                {
                    "name": "token",
                    "measure": "cached_input",
                    "price": p.cached_input_usd_per_mtok,
                    "per": 1_000_000,
                }
            )
        item["pricing"] = {"kind": "fixed", "currency": "USD", "units": units}
    return item


def _matches(model: ModelSpec, request: Request) -> bool:
    ids = _values(request, "id")
    if ids and not ({model.id.lower(), *(a.lower() for a in model.aliases)} & set(ids)):
        return False
    types = _values(request, "type")
    if types and model.endpoint_type.lower() not in types:
        return False
    tags = _values(request, "tags")
    if tags and not ({t.lower() for t in model.tags} & set(tags)):
        return False
    caps = _values(request, "capabilities")
    if caps and not ({c.lower() for c in model.capabilities} & set(caps)):
        return False
    ins = {m.lower() for m in model.modalities.input}
    outs = {m.lower() for m in model.modalities.output}
    mods = _values(request, "modalities")
    if mods and not ((ins | outs) & set(mods)):
        return False
    imods = _values(request, "input_modalities")
    if imods and not (ins & set(imods)):
        return False
    omods = _values(request, "output_modalities")
    return not (omods and not (outs & set(omods)))


def _json(request: Request, body: dict[str, Any]) -> Response:
    raw = orjson.dumps(body)
    etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(raw, media_type="application/json", headers={"ETag": etag})


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/v1/models")
@router.get("/models", include_in_schema=False)
@router.get("/api/v1/models", include_in_schema=False)
async def list_models(request: Request) -> Response:
    catalog = app_state(request).catalog
    sections = _sections(request)
    base = _base_url(request)
    data = [model_item(m, sections, catalog, base) for m in catalog.models if _matches(m, request)]
    return _json(request, {"object": "list", "data": data})


@router.get("/model/{model_id:path}")
async def get_model(request: Request, model_id: str) -> Response:
    catalog = app_state(request).catalog
    model = catalog.find(model_id)
    if model is None:
        raise NotFoundError(f"Model {model_id!r} not found", param="id", code="model_not_found")
    return _json(
        request,
        {"object": "model", "data": model_item(model, _sections(request), catalog, _base_url(request))},
    )
