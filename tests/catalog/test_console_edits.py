"""Catalogue editing on the operator console, across two instances on one database: a provider (its
API key sealed at rest) and a model added through instance A answer on instance B without a restart
(B polls the catalogue version); names the catalogue file defines are refused with the reason and
offered as a YAML patch; a removed model is gone everywhere."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema_self_service import CatalogEntry
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.web.helpers import create_key, csrf, eventually, logged_in, make_account, with_db

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def _chat(server: LiveServer, key: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{server.url}/v1/chat/completions", headers=headers, json=body, timeout=30)


def test_an_edit_on_one_instance_is_live_on_another(
    make_live_server: Any, openai_upstream: FakeOpenAI
) -> None:
    config = MOCK_CONFIG.format(base_url=openai_upstream.base_url)
    a: LiveServer = make_live_server(config, catalog_poll_interval=0.2)
    b: LiveServer = make_live_server(config, catalog_poll_interval=0.2)
    make_account(a, "op@example.com", operator=True)
    key = create_key(b, email="user@example.com", usd=5)
    assert _chat(b, key, "extra/model").status_code == 404

    with logged_in(a, "op@example.com") as op:
        token = csrf(op.get("/admin/catalog"))
        # The file's own names: refused with the reason, the edit offered as a patch.
        r = op.post(
            "/admin/catalog/models",
            data={"csrf_token": token, "id": "mock/echo", "provider": "mock", "upstream": "x", "input": "9"},
        )
        assert r.status_code == 400 and "defined by the catalogue file" in r.text
        assert "id: mock/echo" in r.text and "input_usd_per_mtok: 9.0" in r.text  # the YAML patch
        r = op.post("/admin/catalog/providers", data={"csrf_token": token, "name": "mock", "type": "openai"})
        assert r.status_code == 400 and "defined by the catalogue file" in r.text
        # Bad input: the reason, nothing stored.
        r = op.post("/admin/catalog/providers", data={"csrf_token": token, "name": "x", "type": "nope"})
        assert r.status_code == 400 and "type: one of" in r.text
        r = op.post(
            "/admin/catalog/models",
            data={"csrf_token": token, "id": "a/b", "provider": "ghost", "upstream": "x", "input": "1"},
        )
        assert r.status_code == 400 and "no provider named" in r.text
        r = op.post(
            "/admin/catalog/models",
            data={"csrf_token": token, "id": "a/b", "provider": "mock", "upstream": "x", "input": "-1"},
        )
        assert r.status_code == 400 and "input price" in r.text

        r = op.post(
            "/admin/catalog/providers",
            data={
                "csrf_token": token,
                "name": "extra",
                "type": "openai",
                "base_url": openai_upstream.base_url,
                "api_key": "sk-extra-secret",
            },
        )
        assert r.status_code == 303, r.text
        r = op.post(
            "/admin/catalog/models",
            data={
                "csrf_token": token,
                "id": "extra/model",
                "label": "Extra",
                "provider": "extra",
                "upstream": "extra-upstream",
                "input": "1.5",
                "output": "2",
                "fallbacks": "mock2 fallback-upstream\n",
            },
        )
        assert r.status_code == 303, r.text
        page = op.get("/admin/catalog").text
        assert "extra/model" in page and "API key stored (sealed)" in page and "sk-extra-secret" not in page
        assert "extra / extra-upstream → mock2 / fallback-upstream" in page
        assert "catalog.provider" in op.get("/admin/audit").text

    async def sealed(conn: AsyncConnection) -> list[str]:
        return [str(s) for s in (await conn.execute(select(CatalogEntry.secret_sealed))).scalars() if s]

    stored = with_db(a, sealed)
    assert len(stored) == 1 and "sk-extra-secret" not in stored[0]

    # Instance B serves it after its next poll: the route, the key, the prices.
    openai_upstream.requests.clear()
    answered = eventually(lambda: _chat(b, key, "extra/model").status_code == 200, what="B to serve it")
    assert answered
    sent = openai_upstream.requests[-1]
    assert sent.json["model"] == "extra-upstream"
    assert sent.headers.get("Authorization") == "Bearer sk-extra-secret"
    metrics = httpx.get(f"{b.url}/models/metrics", timeout=30).json()
    assert "extra/model" in str(metrics)  # its live figures are kept too

    with logged_in(a, "op@example.com") as op:
        token = csrf(op.get("/admin/catalog"))
        r = op.post(
            "/admin/catalog/delete", data={"csrf_token": token, "kind": "model", "name": "extra/model"}
        )
        assert r.status_code == 303
        page = op.get("/admin/catalog").text
        assert "<code>extra/model</code>" not in page and "<code>extra</code>" in page
    assert eventually(lambda: _chat(b, key, "extra/model").status_code == 404, what="B to drop it")
