"""The live figures of ``GET /models/metrics`` on a model's docs page and in the playground's model
picker; embedding models get their own docs page and stay out of the chat playground."""

from __future__ import annotations

import html

import httpx
import pytest

from tests.conftest import LiveServer
from tests.web.test_pages import _client, sign_up

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_docs_page_and_picker_show_the_live_figures(web_server: LiveServer) -> None:
    with _client(web_server) as c:
        assert 'id="live-metrics-none"' in c.get("/docs/models/mock/echo").text
        sign_up(c, "figures@example.com")
        assert "p50" not in c.get("/app/playground").text
        key = web_server.create_key(email="api@example.com")
        body = {"model": "echo", "messages": [{"role": "user", "content": "one two three four"}]}
        r = httpx.post(
            f"{web_server.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200
        figures = c.get("/models/metrics", params={"aliases": "mock/echo"}).json()["models"][0]["metrics"]
        page = c.get("/docs/models/mock/echo").text
        assert 'id="live-metrics-table"' in page
        assert f"<td>{figures['duration_ms']['p50']}</td>" in page
        picker = c.get("/app/playground").text
        assert html.escape(f"{figures['tps']['p50']:,.0f} tok/s") in picker


def test_embedding_model_docs_page(web_server: LiveServer) -> None:
    with _client(web_server) as c:
        page = c.get("/docs/models/openai/text-embedding-3-small").text
        assert "1,536" in page and "2,048 inputs per request" in page
        assert "$0.02 per 1M input tokens" in page
        assert f"{web_server.url}/v1/embeddings" in page and "Try in Playground" not in page
        spec = c.get("/docs-json", params={"model": "text-embedding-3-small"}).json()
        props = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]["properties"]
        assert props["dimensions"]["maximum"] == 1536 and props["dimensions"]["minimum"] == 1
        ada = c.get("/docs-json", params={"model": "text-embedding-ada-002"}).json()
        ada_props = ada["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]["properties"]
        assert "dimensions" not in ada_props  # its vectors cannot be shortened
        sign_up(c, "picker@example.com")
        assert "text-embedding-3-small" not in c.get("/app/playground").text
