"""What agents probe before their first call (issue 20): ``HEAD`` wherever ``GET`` is served
(Claude Code sends ``HEAD /`` on start), and the model list in Anthropic's shape for Anthropic's
SDKs (they send ``anthropic-version``), OpenAI's otherwise."""

from __future__ import annotations

import anthropic
import pytest
import requests

from tests.conftest import LiveServer


@pytest.mark.parametrize("path", ["/", "/health", "/v1/models", "/v1/models/mock/echo", "/docs"])
def test_head_answers_like_get_without_a_body(live_server: LiveServer, path: str) -> None:
    got = requests.get(f"{live_server.url}{path}", timeout=60)
    head = requests.head(f"{live_server.url}{path}", timeout=60)
    assert got.status_code == 200
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("content-length") == got.headers.get("content-length")


def test_head_on_a_post_only_door_answers_as_get_does(live_server: LiveServer) -> None:
    got = requests.get(f"{live_server.url}/v1/chat/completions", timeout=60)
    head = requests.head(f"{live_server.url}/v1/chat/completions", timeout=60)
    assert head.status_code == got.status_code != 200 and head.content == b""


def test_anthropic_sdk_lists_and_retrieves_models(live_server: LiveServer) -> None:
    client = anthropic.Anthropic(base_url=live_server.url, api_key="unused", max_retries=0)
    models = list(client.models.list(limit=2))  # the SDK follows has_more / last_id page by page
    ids = [m.id for m in models]
    assert "mock/echo" in ids and "mock/chain" in ids
    assert all(m.type == "model" and m.display_name and m.created_at for m in models)
    assert not any(i.startswith(("openai/text-embedding", "local/all-minilm")) for i in ids)  # chat only
    echo = client.models.retrieve("echo")  # an alias resolves
    assert echo.id == "mock/echo" and echo.display_name == "Mock" and echo.type == "model"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("no-such-model")


def test_anthropic_page_fields(live_server: LiveServer) -> None:
    headers = {"anthropic-version": "2023-06-01"}
    first = requests.get(f"{live_server.url}/v1/models", params={"limit": 1}, headers=headers, timeout=60)
    body = first.json()
    assert set(body) == {"data", "has_more", "first_id", "last_id"} and body["has_more"] is True
    (item,) = body["data"]
    assert body["first_id"] == body["last_id"] == item["id"]
    assert set(item) == {"type", "id", "display_name", "created_at"} and item["created_at"].endswith("Z")
    second = requests.get(
        f"{live_server.url}/v1/models",
        params={"limit": 1, "after_id": item["id"]},
        headers=headers,
        timeout=10,
    ).json()
    assert second["data"][0]["id"] != item["id"]
    back = requests.get(
        f"{live_server.url}/v1/models",
        params={"limit": 1, "before_id": second["data"][0]["id"]},
        headers=headers,
        timeout=10,
    ).json()
    assert back["data"][0]["id"] == item["id"]
    bad = requests.get(f"{live_server.url}/v1/models", params={"limit": 0}, headers=headers, timeout=60)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    # Without anthropic-version: OpenAI's list, as before.
    assert requests.get(f"{live_server.url}/v1/models", timeout=60).json()["object"] == "list"
