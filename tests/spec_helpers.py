"""Load response schemas from the vendored AI/ML API OpenAPI specs (``tests/specs/aimlapi``) as JSON Schema.

OpenAPI 3.0 ``nullable: true`` becomes a ``null`` member of the type; everything else is kept.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SPECS_DIR = Path(__file__).resolve().parent / "specs" / "aimlapi"


@cache
def load_spec(spec_file: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SPECS_DIR / spec_file).read_text(encoding="utf-8"))
    return data


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("nullable", "example", "format")}
    if node.get("nullable"):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        elif t is None and not any(k in out for k in ("anyOf", "oneOf", "allOf")):
            pass  # untyped + nullable: anything goes
        elif "anyOf" in out or "oneOf" in out:
            key = "anyOf" if "anyOf" in out else "oneOf"
            out[key] = [*out[key], {"type": "null"}]
    return out


def response_schema(
    spec_file: str,
    path: str,
    method: str = "get",
    status: str = "200",
    content_type: str = "application/json",
) -> dict[str, Any]:
    spec = load_spec(spec_file)
    op = spec["paths"][path][method.lower()]
    schema = op["responses"][status]["content"][content_type]["schema"]
    converted: dict[str, Any] = _convert(schema)
    return converted


def request_schema(spec_file: str, path: str, method: str = "post") -> dict[str, Any]:
    op = load_spec(spec_file)["paths"][path][method.lower()]
    converted: dict[str, Any] = _convert(op["requestBody"]["content"]["application/json"]["schema"])
    return converted


def validate(instance: Any, schema: dict[str, Any]) -> None:
    jsonschema.validate(instance, schema, cls=jsonschema.Draft7Validator)
