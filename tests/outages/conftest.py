"""Dependency outages: a live gateway whose Redis or PostgreSQL sits behind a ``ChaosProxy`` the
test kills or freezes, and the books read straight from the database afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.books import books
from tests.conftest import MOCK_CONFIG
from tests.fakes.chaos_proxy import ChaosProxy
from tests.fakes.openai_server import FakeOpenAI

EMBEDDING_MODEL = """
  - id: fake/openai-embed
    type: embedding
    info: {name: Embeddings (fake), developer: Lab}
    pricing: {input_usd_per_mtok: 0.5}
    embedding: {dimensions: 16}
    routes:
      - {provider: mock, model: embed-model}
"""

# One request per door: (path, body, the door's error envelope check).
DOORS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": (
        "/v1/chat/completions",
        {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16},
    ),
    "messages": (
        "/v1/messages",
        {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16},
    ),
    "responses": ("/v1/responses", {"model": "mock/echo", "input": "hi", "max_output_tokens": 16}),
    "embeddings": ("/v1/embeddings", {"model": "fake/openai-embed", "input": ["hi there"]}),
}


def outage_config(upstream: FakeOpenAI) -> str:
    return MOCK_CONFIG.format(base_url=upstream.base_url) + EMBEDDING_MODEL


def call(url: str, key: str, door: str, timeout: float = 60.0) -> tuple[requests.Response, float]:
    """One request through ``door``; the response and the seconds it took."""
    path, body = DOORS[door]
    started = time.monotonic()
    r = requests.post(
        url + path,
        json=body,
        headers={"Authorization": f"Bearer {key}", "x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=timeout,
    )
    return r, time.monotonic() - started


def assert_unavailable(r: requests.Response, door: str) -> None:
    """503 with Retry-After, in the door's own envelope."""
    assert r.status_code == 503, (door, r.status_code, r.text)
    assert int(r.headers["Retry-After"]) >= 1
    body = r.json()
    if door == "messages":
        assert body["type"] == "error" and body["error"]["type"], body
    else:
        assert body["error"]["type"] == "service_unavailable" and body["error"]["message"], body


def through_proxy(url: str, proxy: ChaosProxy) -> str:
    """``url`` (a PostgreSQL or Redis URL on 127.0.0.1) pointed at the proxy instead."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{proxy.port}"))


def target_port(url: str, default: int) -> int:
    return urlsplit(url).port or default


@pytest.fixture
def chaos() -> Iterator[Callable[[int], ChaosProxy]]:
    """Factory of proxies (closed at the end of the test)."""
    proxies: list[ChaosProxy] = []

    def make(port: int) -> ChaosProxy:
        proxy = ChaosProxy(port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def until(check: Callable[[], bool], what: str, within: float = 60.0) -> None:
    """Wait for a condition (a generous deadline, never a speed assertion)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within:.0f}s: {what}")
        time.sleep(0.05)


def assert_books_exact(url: str, email: str, inference_ids: set[str]) -> None:
    """After recovery: no hold left, charged == logged == balance delta, one log row per request."""

    def settled() -> bool:
        b = books(url, email=email)
        return b.holds == 0 and inference_ids <= set(b.statuses)

    until(settled, "every hold settled and every request logged")
    b = books(url, email=email)
    assert b.charged == b.logged_total, b
    assert b.topups - b.balance == b.charged, b
    assert inference_ids <= set(b.statuses), sorted(inference_ids - set(b.statuses))
    assert not any(status == 500 for status in b.statuses.values()), b.statuses
