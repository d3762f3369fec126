"""What modelgate adds beyond the contracts it serves is marked in its ``/openapi.json``
(docs/admin-api.md, "Extensions"): its own operations (organisations, projects, members, budgets,
billing mode, a key's spend per level) carry ``x-modelgate-extension: true``; OpenAI's Admin API
operations do not; the properties modelgate adds to the AI/ML API's key objects are marked too."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.conftest import LiveServer

OWN = {
    ("get", "/v1/organisation"),
    ("post", "/v1/projects"),
    ("patch", "/v1/projects/{project_id}"),
    ("put", "/v1/organisation/members"),
    ("put", "/v1/projects/{project_id}/members"),
    ("put", "/v1/budgets"),
    ("delete", "/v1/budgets/{budget_id}"),
    ("get", "/v1/keys/{prefix}/spend"),
    ("put", "/v1/organisation/billing"),
}


def _schema(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_extensions_are_marked(live_server: LiveServer) -> None:
    doc = requests.get(f"{live_server.url}/openapi.json", timeout=30).json()
    marked = {
        (method, path)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if op.get("x-modelgate-extension") is True
    }
    assert marked >= OWN, OWN - marked
    assert not [p for _, p in marked if p.startswith("/v1/organization/")]  # OpenAI's own operations
    body = doc["paths"]["/v1/keys"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    props = _schema(doc, body)["properties"]
    for name in ("project_id", "allowed_models", "rpm", "tpm", "expires_at", "cache"):
        assert props[name].get("x-modelgate-extension") is True, name
    for name in ("name", "limit", "scopes"):  # the AI/ML API's own
        assert "x-modelgate-extension" not in props[name], name
