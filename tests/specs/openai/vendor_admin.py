"""Cut ``admin.json`` (the part of OpenAI's Admin API modelgate serves, docs/admin-api.md) out of
OpenAI's full OpenAPI document: the listed paths, unchanged, and every schema they reference.

    python tests/specs/openai/vendor_admin.py /path/to/openai-openapi.json

Other helpers add their paths to ``PATHS`` (usage, costs, audit logs, spend limits and alerts);
rerun to regenerate. Paths missing from the document given are an error."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "admin.json"
ORG = "/organization"
PATHS = [
    # part 1: projects and people
    f"{ORG}/projects",
    f"{ORG}/projects/{{project_id}}",
    f"{ORG}/projects/{{project_id}}/archive",
    f"{ORG}/users",
    f"{ORG}/users/{{user_id}}",
    f"{ORG}/projects/{{project_id}}/users",
    f"{ORG}/projects/{{project_id}}/users/{{user_id}}",
    # invites, keys, service accounts, model permissions, rate limits
    f"{ORG}/invites",
    f"{ORG}/invites/{{invite_id}}",
    f"{ORG}/projects/{{project_id}}/api_keys",
    f"{ORG}/projects/{{project_id}}/api_keys/{{api_key_id}}",
    f"{ORG}/projects/{{project_id}}/service_accounts",
    f"{ORG}/projects/{{project_id}}/service_accounts/{{service_account_id}}",
    f"{ORG}/projects/{{project_id}}/service_accounts/{{service_account_id}}/api_keys",
    f"{ORG}/admin_api_keys",
    f"{ORG}/admin_api_keys/{{key_id}}",
    f"{ORG}/projects/{{project_id}}/model_permissions",
    f"{ORG}/projects/{{project_id}}/rate_limits",
    f"{ORG}/projects/{{project_id}}/rate_limits/{{rate_limit_id}}",
    # spend limits and spend alerts (tests/api/test_admin_spend.py)
    f"{ORG}/spend_limit",
    f"{ORG}/projects/{{project_id}}/spend_limit",
    f"{ORG}/spend_alerts",
    f"{ORG}/spend_alerts/{{alert_id}}",
    f"{ORG}/projects/{{project_id}}/spend_alerts",
    f"{ORG}/projects/{{project_id}}/spend_alerts/{{alert_id}}",
]
TOP = ("openapi", "info", "servers", "security")


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def cut(full: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    missing = [p for p in paths if p not in full["paths"]]
    if missing:
        raise SystemExit(f"not in the document: {missing}")
    chosen = {p: full["paths"][p] for p in paths}
    schemas = full["components"]["schemas"]
    names: set[str] = set()
    _refs(chosen, names)
    todo = list(names)
    while todo:
        more: set[str] = set()
        _refs(schemas[todo.pop()], more)
        todo += sorted(more - names)
        names |= more
    components = {
        "schemas": {n: schemas[n] for n in sorted(names)},
        "securitySchemes": full["components"]["securitySchemes"],
    }
    return {**{k: full[k] for k in TOP if k in full}, "paths": chosen, "components": components}


def main(argv: list[str]) -> None:
    full = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    OUT.write_text(json.dumps(cut(full, PATHS), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
