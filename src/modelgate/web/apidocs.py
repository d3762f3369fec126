"""``/api-docs``: the service API reference, rendered on the server from this app's own OpenAPI
document (``/openapi.json``). No Swagger UI from a CDN: the page works offline and under the
strict Content-Security-Policy, and it shows whatever contract the routers declare.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelgate.web.openapi import schema_rows
from modelgate.web.render import render
from modelgate.web.sessions import load_user

router = APIRouter(include_in_schema=False)

METHODS = ("get", "post", "put", "patch", "delete")


def model_endpoints() -> list[dict[str, Any]]:
    """The doors (one per API dialect), summed up above the full reference."""
    from modelgate.doors import default_doors

    out = []
    for door in default_doors():
        paths = sorted(door.paths, key=lambda p: (not p.startswith("/v1/"), p))
        out.append({"name": door.name, "paths": paths, "note": getattr(door, "note", "")})
    return out


def deref(node: Any, doc: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` inlined (a recursive reference is left as a named object)."""
    if isinstance(node, list):
        return [deref(v, doc, seen) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        if ref in seen or len(seen) > 12:
            return {"type": "object", "title": ref.rsplit("/", 1)[-1]}
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return deref(merged, doc, (*seen, ref))
    return {k: deref(v, doc, seen) for k, v in node.items()}


def _schema_type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return f"{schema.get('type', 'string')} · one of " + ", ".join(str(v) for v in schema["enum"][:10])
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        return " | ".join(dict.fromkeys(_schema_type(o) for o in options))
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_schema_type(schema['items'])}"
    return str(schema.get("type") or schema.get("title") or "object")


def _body(op: dict[str, Any]) -> dict[str, Any] | None:
    content = (op.get("requestBody") or {}).get("content") or {}
    for media, spec in content.items():
        schema = spec.get("schema") or {}
        rows = schema_rows(schema, max_depth=2) if "properties" in schema else []
        required = bool(op["requestBody"].get("required", False))
        return {"media": media, "type": _schema_type(schema), "rows": rows, "required": required}
    return None


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (path, method), grouped by first tag, in document order."""
    doc = deref(doc, doc)
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in (doc.get("paths") or {}).items():
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            params = [
                {
                    "name": p.get("name", ""),
                    "in": p.get("in", ""),
                    "required": bool(p.get("required")),
                    "type": _schema_type(p.get("schema") or {}),
                    "description": p.get("description") or (p.get("schema") or {}).get("description", ""),
                }
                for p in op.get("parameters", []) + item.get("parameters", [])
                if isinstance(p, dict)
            ]
            responses = [
                {"status": str(code), "description": (r or {}).get("description", "")}
                for code, r in (op.get("responses") or {}).items()
            ]
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append(
                {
                    "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "").strip("-"),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary") or "",
                    "description": op.get("description") or "",
                    "params": params,
                    "body": _body(op),
                    "responses": responses,
                    "auth": bool(op.get("security") or doc.get("security")),
                }
            )
    return [{"tag": tag, "ops": ops} for tag, ops in groups.items()]


@router.get("/api-docs")
async def api_docs(request: Request) -> Response:
    await load_user(request)
    doc = request.app.openapi()
    return render(
        request,
        "api_docs.html",
        {
            "title": doc.get("info", {}).get("title", "API"),
            "version": doc.get("info", {}).get("version", ""),
            "groups": operations(doc),
            "doors": model_endpoints(),
            "base": str(request.base_url).rstrip("/"),
            "page": "docs",
        },
    )
