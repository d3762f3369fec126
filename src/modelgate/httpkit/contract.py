"""The server's OpenAPI document (``GET /openapi.json``): the real contract of every operation.

Every operation declares its request body, its query and path parameters and its error responses,
so that clients can be generated from it and the test suite can fuzz it (``tests/api/
test_openapi_fuzz.py``: schemathesis over every operation, no 5xx allowed).

How an endpoint declares its contract:

- A FastAPI route whose handler reads the request itself passes ``openapi_extra=operation(...)``:
  ``query(...)`` parameters and a ``json_body(Model)`` (a pydantic model, the one the handler
  validates with). Parameters FastAPI already sees (path parameters) are documented by FastAPI.
- A raw-ASGI door (``doors/``) has an ``openapi()`` method returning ``{path: operation}`` for the
  paths it serves, each built with ``operation(...)`` and ``json_body(...)``; a door without one is
  still listed, with a free-form JSON body.

``openapi_document`` then adds, to every operation, the error envelope for the statuses the
gateway can answer (``ERRORS``; 502-504 for operations that call an upstream), the security
requirement (``Authorization: Bearer`` or ``x-api-key``), and moves the pydantic ``$defs`` into
``components.schemas``. FastAPI's own 422 (this server answers 400) is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from modelgate.wire.service import EXTENSION as EXTENSION

REF = "#/components/schemas/{model}"
ERRORS: dict[int, str] = {
    400: "The request is invalid (the message names the field)",
    401: "Missing, unknown or disabled API key",
    403: "The key may not do this (scope, management key, credits, spending limit)",
    404: "No such resource",
    413: "The request body is over the size limit",
    429: "Rate limited (see Retry-After)",
}
UPSTREAM_ERRORS: dict[int, str] = {
    502: "The upstream provider failed or answered something invalid",
    503: "No provider can serve the request now (see Retry-After)",
    504: "The upstream provider timed out",
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message", "statusCode"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        },
        "message": {"type": "string"},
        "statusCode": {"type": "integer"},
        "path": {"type": "string"},
        "requestId": {"type": "string"},
        "timestamp": {"type": "string"},
    },
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
}


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """A pydantic model's validation schema, its definitions referenced from components under a
    name prefixed by the model's wire module (``ChatStreamOptions``, ``ResponsesStreamOptions``)."""
    prefix = model.__module__.rsplit(".", 1)[-1].title().replace("_", "")
    schema = model.model_json_schema(ref_template=REF.replace("{model}", prefix + "{model}"))
    defs = schema.get("$defs")
    if isinstance(defs, dict):
        schema["$defs"] = {prefix + name: value for name, value in defs.items()}
    return schema


def json_body(model: type[BaseModel] | None = None, *, required: bool = True) -> dict[str, Any]:
    """A JSON request body validated by ``model`` (None: any JSON object)."""
    schema = schema_of(model) if model is not None else {"type": "object"}
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def query(
    name: str,
    schema: dict[str, Any] | None = None,
    *,
    description: str = "",
    required: bool = False,
    many: bool = False,
) -> dict[str, Any]:
    """A query parameter (``many``: repeated, ``?model=a&model=b``)."""
    item = schema or {"type": "string"}
    param: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": "array", "items": item} if many else item,
    }
    if many:
        param.update(style="form", explode=True)
    if description:
        param["description"] = description
    return param


def operation(
    *,
    params: Iterable[dict[str, Any]] = (),
    body: dict[str, Any] | None = None,
    upstream: bool = False,
    summary: str | None = None,
    responses: dict[str, Any] | None = None,
    extension: bool = False,
) -> dict[str, Any]:
    """An OpenAPI operation fragment (``openapi_extra`` of a route, or a door's operation).
    ``upstream``: the operation calls a provider (502/503/504 are among its answers).
    ``extension``: modelgate's own operation, beyond the OpenAI and AI/ML API contracts it serves
    (marked ``x-modelgate-extension: true``; a property of a served object that modelgate adds is
    marked the same way, with ``EXTENSION`` in its pydantic ``Field``'s ``json_schema_extra``)."""
    op: dict[str, Any] = {}
    if extension:
        op.update(EXTENSION)
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = body
    if upstream:
        op["x-modelgate-upstream"] = True
    if summary:
        op["summary"] = summary
    if responses:
        op["responses"] = responses
    return op


# Query parameters shared by the usage endpoints.
WINDOW = [
    query(
        "period",
        {"type": "string", "pattern": "^[1-9][0-9]{0,5}[hd]$", "example": "24h"},
        description="e.g. 24h or 7d (at most 92 days); or start and end",
    ),
    query(
        "start",
        {"type": "string", "format": "date-time", "example": "2026-07-01T00:00:00Z"},
        description="with end, instead of period",
    ),
    query("end", {"type": "string", "format": "date-time", "example": "2026-07-28T00:00:00Z"}),
    query("key_prefix", {"type": "string", "maxLength": 8, "example": "abcd1234"}, description="a key"),
]


def openapi_document(app: FastAPI, doors: Iterable[Any]) -> dict[str, Any]:
    """The whole document, built once per app."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    paths: dict[str, Any] = doc.setdefault("paths", {})
    for door in doors:
        declared = door.openapi() if hasattr(door, "openapi") else {}
        for path in sorted(door.paths):
            op = declared.get(path) or operation(body=json_body(), upstream=True)
            paths[path] = {"post": {"operationId": f"{door.name}_{_slug(path)}", **op}}
    components = doc.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    public = {"/v1/models", "/model/{model_id}", "/v1/models/{model_id}", "/models/metrics"}
    for path, item in paths.items():
        for op in item.values():
            _finish(op, secured=path not in public)
    _hoist_defs(doc, schemas)
    app.openapi_schema = doc
    return doc


def _finish(op: dict[str, Any], *, secured: bool) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    responses.pop("422", None)
    responses.setdefault("200", {"description": "OK"})
    errors = dict(ERRORS)
    if op.pop("x-modelgate-upstream", False):
        errors.update(UPSTREAM_ERRORS)
    if not secured:
        errors = {s: d for s, d in errors.items() if s in (400, 404, 413)}
    for status, description in errors.items():
        responses.setdefault(
            str(status),
            {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
            },
        )
    if secured:
        op["security"] = [{"bearer": []}, {"apiKey": []}]


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> None:
    """Move every pydantic ``$defs`` into ``components.schemas`` (their refs already point there)."""
    if isinstance(node, dict):
        defs = node.pop("$defs", None)
        if isinstance(defs, dict):
            for name, schema in defs.items():
                if schemas.setdefault(name, schema) != schema:
                    # Two models of one name would share a component: rename one of the classes.
                    raise RuntimeError(f"OpenAPI: two different schemas are named {name!r}")
                _hoist_defs(schema, schemas)
        for value in node.values():
            _hoist_defs(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, schemas)


def _slug(path: str) -> str:
    return path.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "root"
