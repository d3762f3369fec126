"""The Responses API contract from OpenAI's published OpenAPI document (vendored as
``tests/specs/openai/responses.json``): every streamed event is validated against the schema of its
``type``, whole responses against ``Response``, input-item pages against ``ResponseItemList``."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_FILE = Path(__file__).resolve().parents[2] / "specs" / "openai" / "responses.json"
URN = "urn:openai-responses"


@cache
def _spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    return data


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(_spec(), default_specification=DRAFT202012)
    return Registry().with_resource(URN, resource)


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{URN}#/components/schemas/{name}"}, registry=_registry())


@cache
def event_schemas() -> dict[str, str]:
    """Event ``type`` -> the name of its schema, for every member of ``ResponseStreamEvent``."""
    schemas = _spec()["components"]["schemas"]
    out: dict[str, str] = {}
    for ref in schemas["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name]["properties"]["type"]["enum"]:
            out[kind] = name
    return out


def check(name: str, value: Any) -> None:
    errors = sorted(validator(name).iter_errors(value), key=lambda e: list(e.absolute_path))
    assert not errors, f"{name}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:5]
    )


def check_response(body: Any) -> None:
    check("Response", body)


def parse_sse(raw: bytes) -> list[dict[str, Any]]:
    """The events of a Responses stream (``event:`` names checked against each payload's type)."""
    events: list[dict[str, Any]] = []
    for frame in raw.split(b"\n\n"):
        if not frame.strip():
            continue
        name, data = None, None
        for line in frame.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = orjson.loads(line[6:])
        assert isinstance(data, dict), frame
        assert name is None or name == data["type"], frame
        events.append(data)
    return events


def check_events(events: list[dict[str, Any]]) -> None:
    """Each event against its schema, sequence numbers 0, 1, 2…, and the lifecycle in order."""
    known = event_schemas()
    for event in events:
        assert event["type"] in known, f"unknown event type {event['type']}"
        check(known[event["type"]], event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created", kinds
    terminal = {"response.completed", "response.incomplete", "response.failed"}
    assert kinds[-1] in terminal, kinds
    assert sum(k in terminal for k in kinds) == 1, kinds
    opened: set[int] = set()
    for event in events:  # every output item is added before its deltas and done after them
        index = event.get("output_index")
        if event["type"] == "response.output_item.added":
            assert index not in opened
            opened.add(index)
        elif index is not None:
            assert index in opened, event
