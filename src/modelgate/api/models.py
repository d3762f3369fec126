"""Catalogue endpoints: ``GET /v1/models`` (also ``/models``), ``GET /model/{id}`` (models.json) and
OpenAI's retrieve, ``GET /v1/models/{id}``.

Items carry the AI/ML API fields and OpenAI's (``object: "model"``, ``created``, ``owned_by``), so
both kinds of client read them whole. No key is required. Filters: several values of one parameter
are OR-ed (comma-separated or repeated), several parameters are AND-ed; values are case-insensitive;
``id`` matches aliases; ``type`` takes the endpoint type (``openai/embeddings``) or the catalogue
kind (``embedding``).

A request that carries ``anthropic-version`` (Anthropic's SDKs and Claude Code always send it) gets
Anthropic's shape instead: the chat models as ``{"type": "model", "id", "display_name",
"created_at"}`` in a page with ``has_more``, ``first_id`` and ``last_id`` (``limit``, ``after_id``,
``before_id`` page through it), a retrieved model in the same shape, errors in Anthropic's envelope.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from modelgate.catalog.models import ModelSpec
from modelgate.catalog.registry import Catalog
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.httpkit.contract import operation, query
from modelgate.httpkit.deps import app_state

router = APIRouter()

_LIST = "comma-separated, or repeated"
_SECTIONS = [query("include", description="pricing, modalities, capabilities or all; " + _LIST, many=True)]
LIST_PARAMS = [
    *_SECTIONS,
    query("details", {"enum": ["true", "false", "1", "0"]}),
    *(
        query(name, description=_LIST, many=True)
        for name in (
            "id",
            "type",
            "tags",
            "capabilities",
            "modalities",
            "input_modalities",
            "output_modalities",
        )
    ),
]

SECTIONS = ("pricing", "modalities", "capabilities")


def _values(request: Request, name: str) -> list[str]:
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out.extend(v.strip().lower() for v in raw.split(",") if v.strip())
    return out


_BOOLEAN = {"true": True, "1": True, "false": False, "0": False}


def _details(request: Request) -> bool:
    """``details``: true, false, 1 or 0, given at most once; anything else (``null``, ``yes``) is a
    400 rather than silently false."""
    values = request.query_params.getlist("details")
    if not values:
        return False
    if len(values) > 1 or values[0].strip().lower() not in _BOOLEAN:
        raise InvalidRequestError("details must be true, false, 1 or 0, given once", param="details")
    return _BOOLEAN[values[0].strip().lower()]


def _sections(request: Request) -> set[str]:
    wanted = set(_values(request, "include"))
    if _details(request) or "all" in wanted:
        return set(SECTIONS)
    return wanted & set(SECTIONS)


def created_at(model: ModelSpec) -> int:
    """OpenAI's ``created`` (Unix seconds): the catalogue's ``releasedAt`` date, 0 when unknown."""
    raw = model.info.get("releasedAt")
    try:
        day = date.fromisoformat(str(raw)[:10])
    except ValueError:
        return 0
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def owned_by(model: ModelSpec) -> str:
    """OpenAI's ``owned_by``: the id's namespace (``openai/gpt-4o`` -> ``openai``)."""
    if "/" in model.id:
        return model.id.split("/", 1)[0]
    return str(model.info.get("developer", "modelgate")).lower().replace(" ", "-")


def model_item(model: ModelSpec, sections: set[str], catalog: Catalog, base_url: str) -> dict[str, Any]:
    info = dict(model.info)
    info.setdefault("docsUrl", f"{base_url}/docs/models/{model.id}")
    info.setdefault("docsJson", f"{base_url}/docs-json?model={model.id}")
    item: dict[str, Any] = {
        "id": model.id,
        "object": "model",
        "created": created_at(model),
        "owned_by": owned_by(model),
        "info": info,
        "type": model.endpoint_type,
        "aliases": list(model.aliases),
        "tags": list(model.tags),
    }
    if model.embedding is not None:
        e = model.embedding
        item["embedding"] = {
            "dimensions": e.dimensions,
            "min_dimensions": e.min_dimensions,
            "max_inputs": e.max_inputs,
            "max_input_tokens": e.max_input_tokens,
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
        item["pricing"] = model.pricing.public()
    return item


def _matches(model: ModelSpec, request: Request) -> bool:
    ids = _values(request, "id")
    if ids and not ({model.id.lower(), *(a.lower() for a in model.aliases)} & set(ids)):
        return False
    types = _values(request, "type")
    if types and not ({model.endpoint_type.lower(), model.type} & set(types)):
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


def _anthropic(request: Request) -> bool:
    return "anthropic-version" in request.headers


def anthropic_item(model: ModelSpec) -> dict[str, Any]:
    created = datetime.fromtimestamp(created_at(model), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = model.info.get("name")
    return {
        "type": "model",
        "id": model.id,
        "display_name": name if isinstance(name, str) and name else model.id,
        "created_at": created,
    }


def _anthropic_error(status: int, kind: str, message: str) -> Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    headers = {"x-should-retry": "false"} if status < 500 else {}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _anthropic_page(request: Request, catalog: Catalog) -> Response:
    """Anthropic's ``GET /v1/models``: newest first is theirs; ours keeps the catalogue's order."""
    items = [anthropic_item(m) for m in catalog.models if m.type == "chat"]
    raw_limit = request.query_params.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        return _anthropic_error(400, "invalid_request_error", "limit: must be an integer from 1 to 1000")
    limit = int(raw_limit)
    ids = [i["id"] for i in items]
    after, before = request.query_params.get("after_id"), request.query_params.get("before_id")
    for name, value in (("after_id", after), ("before_id", before)):
        if value is not None and value not in ids:
            return _anthropic_error(400, "invalid_request_error", f"{name}: unknown model id {value!r}")
    if before is not None:
        end = ids.index(before)
        page = items[max(0, end - limit) : end]
        more = end - limit > 0
    else:
        start = ids.index(after) + 1 if after is not None else 0
        page = items[start : start + limit]
        more = start + limit < len(items)
    first = page[0]["id"] if page else None
    last = page[-1]["id"] if page else None
    return _json(request, {"data": page, "has_more": more, "first_id": first, "last_id": last})


@router.get("/v1/models", openapi_extra=operation(params=LIST_PARAMS))
@router.get("/models", include_in_schema=False)
@router.get("/api/v1/models", include_in_schema=False)
async def list_models(request: Request) -> Response:
    catalog = app_state(request).catalog
    if _anthropic(request):
        return _anthropic_page(request, catalog)
    sections = _sections(request)
    base = _base_url(request)
    data = [model_item(m, sections, catalog, base) for m in catalog.models if _matches(m, request)]
    return _json(request, {"object": "list", "data": data})


def _find(request: Request, model_id: str) -> tuple[Catalog, ModelSpec]:
    catalog = app_state(request).catalog
    model = catalog.find(model_id)
    if model is None:
        raise NotFoundError(f"Model {model_id!r} not found", param="id", code="model_not_found")
    return catalog, model


@router.get("/model/{model_id:path}", openapi_extra=operation(params=_SECTIONS))
async def get_model(request: Request, model_id: str) -> Response:
    catalog, model = _find(request, model_id)
    return _json(
        request,
        {"object": "model", "data": model_item(model, _sections(request), catalog, _base_url(request))},
    )


@router.get("/v1/models/{model_id:path}", openapi_extra=operation(params=_SECTIONS))
@router.get("/api/v1/models/{model_id:path}", include_in_schema=False)
async def retrieve_model(request: Request, model_id: str) -> Response:
    """OpenAI's ``models.retrieve``: the item itself (ids with slashes; aliases resolve to it)."""
    if _anthropic(request):
        found = app_state(request).catalog.find(model_id)
        if found is None:
            return _anthropic_error(404, "not_found_error", f"model: {model_id}")
        return _json(request, anthropic_item(found))
    catalog, model = _find(request, model_id)
    return _json(request, model_item(model, _sections(request), catalog, _base_url(request)))
