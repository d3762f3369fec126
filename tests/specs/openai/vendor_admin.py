"""Rebuild ``admin.json`` from OpenAI's published OpenAPI document: every ``/organization`` path
(the whole Admin API, served or not), with the components they reference, transitively, and the
error schemas the tests check errors against. Run from the repository root:

    python tests/specs/openai/vendor_admin.py path/to/openai-openapi.json

The output is deterministic (same input, same bytes), so a diff shows exactly what OpenAI changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("admin.json")
PREFIX = "/organization"
ALWAYS = ("ErrorResponse", "Error")  # the error envelope every non-2xx answer is checked against


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def vendor(source: dict[str, Any]) -> dict[str, Any]:
    paths = {p: item for p, item in source["paths"].items() if p == PREFIX or p.startswith(PREFIX + "/")}
    components: dict[str, dict[str, Any]] = {}
    todo = _refs(paths) | {f"#/components/schemas/{name}" for name in ALWAYS}
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        value = source["components"][section][name]
        components.setdefault(section, {})[name] = value
        todo |= _refs(value)
    components["securitySchemes"] = source["components"]["securitySchemes"]
    return {
        "openapi": source["openapi"],
        "info": source["info"],
        "servers": source["servers"],
        "paths": dict(sorted(paths.items())),
        "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())},
        "security": source["security"],
    }


def main(argv: list[str]) -> None:
    source = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    OUT.write_text(json.dumps(vendor(source), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
