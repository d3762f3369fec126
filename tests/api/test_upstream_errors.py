"""Errors that tell the truth, and nothing more (issue 10): an upstream's error text is not relayed
(it held the operator's key fragment, or gzip bytes); the client gets our message naming the
provider and status; the sanitised upstream text goes to the server log. Retry-After reaches the
client, from an upstream 429 and from a provider skipped by its circuit breaker."""

from __future__ import annotations

import gzip
import logging
from typing import Any

import orjson
import pytest

from tests.billing.helpers import chat, error
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted

BREAKER = """
  fragile:
    type: openai
    base_url: {base_url}
    api_key: sk-fragile
    max_retries: 0
    circuit_breaker: {{failure_threshold: 2, cooldown: 600}}
"""
FRAGILE_MODEL = """
  - id: mock/fragile
    info: {{name: Fragile, developer: Lab}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: fragile, model: fragile-model}}
"""


@pytest.fixture
def server(make_live_server: Any, openai_upstream: FakeOpenAI) -> LiveServer:
    providers, models = MOCK_CONFIG.split("models:\n", 1)
    config = providers + BREAKER + "models:\n" + models + FRAGILE_MODEL
    built: LiveServer = make_live_server(config.format(base_url=openai_upstream.base_url))
    return built


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_upstream_401_shows_our_words_not_the_operators_key(server, openai_upstream, caplog):
    key = server.create_key(email="e401@example.com", usd=1.0)
    leak = "Incorrect API key provided: sk-proj-AbCdEfGh1234****wxyz. You can find your API key at x."
    openai_upstream.script(
        Scripted(status=401, body={"error": {"message": leak, "type": "invalid_request_error"}})
    )
    with caplog.at_level(logging.WARNING, logger="modelgate.upstream"):
        body = error(chat(server, key), 502)
    assert body["message"].startswith(
        "upstream mock answered HTTP 401: the gateway's credentials were refused"
    )
    assert "sk-" not in body["message"] and "Incorrect API key" not in body["message"]
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "modelgate.upstream")
    assert "Incorrect API key provided: [redacted]" in logged and "AbCdEfGh" not in logged


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_gzip_error_body_is_not_relayed(server, openai_upstream):
    key = server.create_key(email="gzip@example.com", usd=1.0)
    raw = gzip.compress(orjson.dumps({"error": {"message": "boom"}}))
    openai_upstream.script(Scripted(status=500, body=raw))
    body = error(chat(server, key), 502)
    assert body["message"] == "upstream mock answered HTTP 500: it failed"


def test_an_upstream_429_retry_after_reaches_the_client(server, openai_upstream):
    key = server.create_key(email="e429@example.com", usd=1.0)
    openai_upstream.script(
        Scripted(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "7"})
    )
    r = chat(server, key)
    body = error(r, 429)
    assert r.headers["retry-after"] == "7" and "retry after 7s" in body["message"]


@pytest.mark.parametrize("status", [500, 429])
def test_a_provider_skipped_by_its_breaker_answers_with_retry_after(server, openai_upstream, status):
    key = server.create_key(email=f"breaker{status}@example.com", usd=1.0)
    openai_upstream.script(*(Scripted(status=status, body={"error": {"message": "no"}}) for _ in range(2)))
    for _ in range(2):
        assert chat(server, key, model="mock/fragile").status_code in (502, 429)
    seen = len(openai_upstream.requests)
    r = chat(server, key, model="mock/fragile")
    body = error(r, 503 if status == 500 else 429)
    assert body["error"]["code"] == "circuit_open" and "fragile" in body["message"]
    assert 500 <= int(r.headers["retry-after"]) <= 600
    assert len(openai_upstream.requests) == seen  # skipped: the upstream was not called
    assert chat(server, key).status_code == 200  # other providers are unaffected
