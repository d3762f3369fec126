"""Per-model OpenAPI documents, derived from one template per model type.

Chat models use ``templates/openapi/chat-completions.json`` (the structure of the AI/ML API's
per-model chat specs), embedding models ``templates/openapi/embeddings.json`` (OpenAI's embeddings
request and response, plus ``meta.usage``; ``dimensions`` bounded by the model, or absent when its
vectors cannot be shortened). Every other kind's template is its door's own operation (the one
``/openapi.json`` shows: JSON or multipart), found by the kind's endpoint (``catalog/kinds.py``),
bounded by the model's media limits (voices, formats, sizes, counts, lengths).

For a model we set the ``model`` enum to its id, the servers to this gateway,
bound ``max_tokens`` by the model's output limit, add ``reasoning_effort`` (from our wire model) where
the model can reason, drop tool fields where it cannot call tools, and attach our code samples.
Nothing here is per-model code: every difference comes from the catalogue entry.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelgate.catalog.kinds import KINDS
from modelgate.catalog.models import IMAGE_UNIT, ModelSpec, Reasoning
from modelgate.web.samples import curl_sample, js_sample, python_sample
from modelgate.wire.chat import ChatRequest

TEMPLATE_DIR = Path(__file__).parent / "templates" / "openapi"
TEMPLATES = {"chat": "chat-completions.json", "embedding": "embeddings.json"}  # by ModelSpec.type
TOOL_FIELDS = ("tools", "tool_choice", "parallel_tool_calls")


def load_template(kind: str = "chat") -> dict[str, Any]:
    if kind not in TEMPLATES:
        return door_template(kind)
    data: dict[str, Any] = json.loads((TEMPLATE_DIR / TEMPLATES[kind]).read_text(encoding="utf-8"))
    return data


def door_template(kind: str) -> dict[str, Any]:
    """A one-operation document from the door that serves ``kind``'s endpoint."""
    from modelgate.doors import default_doors

    path = KINDS[kind].endpoint
    door: Any = next(d for d in default_doors() if path in d.paths)
    op = copy.deepcopy(door.openapi()[path])
    op.setdefault(
        "responses",
        {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    return {"openapi": "3.1.0", "paths": {path: {"post": op}}}


def reasoning_efforts(model: ModelSpec) -> list[str]:
    """The ``reasoning_effort`` values this server accepts for ``model`` and maps to a budget: the
    catalogue's effort levels (in the wire model's order), ``none`` only where thinking can be off."""
    field = ChatRequest.model_json_schema()["properties"]["reasoning_effort"]
    options = field.get("anyOf", [field])
    known: list[str] = next((o["enum"] for o in options if "enum" in o), [])
    bounds = model.reasoning or Reasoning()
    allowed = set(bounds.effort_budgets) | ({"none"} if bounds.can_disable else set())
    return [e for e in known if e in allowed]


def providers_enum(model: ModelSpec) -> list[str]:
    return ["auto", *dict.fromkeys(r.provider for r in model.routes)]


def _reasoning_effort_schema(model: ModelSpec) -> dict[str, Any]:
    return {
        "type": "string",
        "enum": reasoning_efforts(model),
        "description": "Constrains effort on reasoning for reasoning models. Reducing reasoning effort can "
        "result in faster responses and fewer tokens used on reasoning in a response.",
    }


def model_openapi(template: dict[str, Any], model: ModelSpec, base_url: str) -> dict[str, Any]:
    doc = copy.deepcopy(template)
    doc["info"] = {"title": f"modelgate · {model.info.get('name', model.id)}", "version": "1.0.0"}
    doc["servers"] = [{"url": base_url}]
    samples = [
        {"lang": "cURL", "source": curl_sample(base_url, model)},
        {"lang": "JavaScript", "source": js_sample(base_url, model)},
        {"lang": "Python", "source": python_sample(base_url, model)},
    ]
    for item in doc["paths"].values():
        for op in item.values():
            schema = _body_schema(op)
            props: dict[str, Any] = schema["properties"]
            props["model"] = {"type": "string", "enum": [model.id]}
            if model.output_max:
                for name in ("max_tokens", "max_completion_tokens"):
                    if name in props:
                        props[name]["maximum"] = model.output_max
            if "provider" in props:
                props["provider"] = {
                    "type": "string",
                    "enum": providers_enum(model),
                    "default": "auto",
                    "description": "Provider routing override: one of this model's providers on this "
                    "server runs alone (retries, no fallback); `auto` (default) uses the whole chain in "
                    "order. Case-insensitive.",
                }
            if "reasoning" in model.capabilities:
                props["reasoning_effort"] = _reasoning_effort_schema(model)
            else:
                props.pop("reasoning_effort", None)
            if "tools" not in model.capabilities:
                for name in TOOL_FIELDS:
                    props.pop(name, None)
            if model.embedding is not None:
                _bound_embedding(props, model)
            _bound_media(props, model)
            op["x-codeSamples"] = samples
            _set_example_model(op.get("responses", {}), model.id)
    return doc


def _bound_embedding(props: dict[str, Any], model: ModelSpec) -> None:
    spec = model.embedding
    assert spec is not None
    if spec.min_dimensions is None:
        props.pop("dimensions", None)
    else:
        props["dimensions"].update(minimum=spec.min_dimensions, maximum=spec.dimensions)
    for variant in props["input"]["oneOf"]:
        if variant.get("type") == "array" and variant["items"].get("type") != "integer":
            variant["maxItems"] = spec.max_inputs


def _enum(values: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": values}


def _bound_media(props: dict[str, Any], model: ModelSpec) -> None:
    """What this media model takes (its catalogue entry), in place of the door's open schema."""
    if model.speech is not None:
        if model.speech.voices:
            props["voice"] = _enum(model.speech.voices)
        props["response_format"] = {**_enum(list(model.speech.formats)), "default": model.speech.formats[0]}
        props["input"]["maxLength"] = model.speech.max_input_chars
    if model.images is not None:
        sizes = sorted({u.removeprefix(IMAGE_UNIT).split("/")[0] for u in model.image_units()})
        qualities = sorted({u.split("/")[1] for u in model.image_units()})
        props["size"] = {**_enum(sizes), "default": model.images.default_size}
        props["quality"] = {**_enum(qualities), "default": model.images.default_quality}
        props["n"] = {"type": "integer", "minimum": 1, "maximum": model.images.max_n, "default": 1}
        props["prompt"]["maxLength"] = model.images.max_prompt_chars


def _body_schema(op: dict[str, Any]) -> dict[str, Any]:
    """The request body's schema, JSON or multipart."""
    schema: dict[str, Any] = next(iter(op["requestBody"]["content"].values()))["schema"]
    return schema


def _set_example_model(node: Any, model_id: str) -> None:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and isinstance(props.get("model"), dict) and "example" in props["model"]:
            props["model"]["example"] = model_id
        for value in node.values():
            _set_example_model(value, model_id)
    elif isinstance(node, list):
        for value in node:
            _set_example_model(value, model_id)


def _operation(doc: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = next(iter(doc["paths"].values()))["post"]
    return op


def request_schema(doc: dict[str, Any]) -> dict[str, Any]:
    return _body_schema(_operation(doc))


def response_schema(doc: dict[str, Any]) -> dict[str, Any]:
    content = _operation(doc)["responses"]["200"].get("content") or {}
    schema: dict[str, Any] = content.get("application/json", {}).get("schema", {})
    return schema


@dataclass(frozen=True, slots=True)
class SchemaRow:
    name: str
    type: str
    required: bool
    description: str
    depth: int
    default: Any = None
    bounds: str = ""


def _type_label(s: dict[str, Any]) -> str:
    if "enum" in s:
        values = ", ".join(json.dumps(v) for v in s["enum"][:8])
        return f"{s.get('type', 'string')} · one of {values}" + ("…" if len(s["enum"]) > 8 else "")
    for key in ("anyOf", "oneOf"):
        if key in s:
            labels = [_type_label(o) if "enum" not in o else o.get("type", "string") for o in s[key]]
            return " | ".join(dict.fromkeys(label for label in labels if label))
    t = s.get("type", "")
    if t == "array" and isinstance(s.get("items"), dict):
        inner = _type_label(s["items"])
        return f"array of {inner}" if inner else "array"
    if s.get("nullable"):
        return f"{t} | null" if t else "null"
    return str(t) if t else ("null" if s.get("nullable") else "object")


def _bounds(s: dict[str, Any]) -> str:
    parts = []
    if "minimum" in s:
        parts.append(f"≥ {s['minimum']}")
    if "maximum" in s:
        parts.append(f"≤ {s['maximum']}")
    return ", ".join(parts)


def _variant_name(v: dict[str, Any], index: int) -> str:
    props = v.get("properties", {})
    for key in ("role", "type"):
        enum = props.get(key, {}).get("enum")
        if enum:
            return f"{key} = {enum[0]}"
    return v.get("title") or f"variant {index + 1}"


def schema_rows(schema: dict[str, Any], *, depth: int = 0, max_depth: int = 3) -> list[SchemaRow]:
    """Flatten an object schema into table rows (nested objects indented, unions as variants)."""
    rows: list[SchemaRow] = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        rows.append(
            SchemaRow(
                name,
                _type_label(prop),
                name in required,
                prop.get("description", ""),
                depth,
                prop.get("default"),
                _bounds(prop),
            )
        )
        if depth + 1 > max_depth:
            continue
        target = prop.get("items", prop) if prop.get("type") == "array" else prop
        variants = target.get("oneOf") or target.get("anyOf")
        if isinstance(variants, list) and any("properties" in v for v in variants):
            for i, v in enumerate(variants):
                if "properties" in v:
                    rows.append(
                        SchemaRow(
                            f"{name} · {_variant_name(v, i)}",
                            "object",
                            False,
                            v.get("description", ""),
                            depth + 1,
                        )
                    )
                    rows.extend(schema_rows(v, depth=depth + 2, max_depth=max_depth))
        elif "properties" in target:
            rows.extend(schema_rows(target, depth=depth + 1, max_depth=max_depth))
    return rows
