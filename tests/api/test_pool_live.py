"""A pool through the live gateway: two deployments of one model at different prices, balanced by
weight; the preferred one rate limits (429) and the request is served by the other without an error
reaching the client, charged at the price of the deployment that answered; the books balance."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.billing.helpers import all_logs, assert_books_balance, chat
from tests.fakes.openai_server import FakeOpenAI, Scripted

CONFIG = """
providers:
  east:
    type: openai
    base_url: {east}
    api_key: k-east
    max_retries: 2
  west:
    type: openai
    base_url: {west}
    api_key: k-west
    max_retries: 2
models:
  - id: pool/gpt
    info: {{name: Pooled, developer: Lab, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    balance: weighted
    routes:
      - {{provider: east, model: east-deployment, weight: 3}}
      - provider: west
        model: west-deployment
        weight: 1
        pricing: {{input_usd_per_mtok: 4.0, output_usd_per_mtok: 8.0}}
"""


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    east, west = FakeOpenAI().serve_in_thread(), FakeOpenAI().serve_in_thread()
    yield east, west
    east.stop_thread()
    west.stop_thread()


def _price(u: dict[str, Any], input_usd: float, output_usd: float) -> int:
    return math.ceil(round((u["prompt_tokens"] * input_usd + u["completion_tokens"] * output_usd) * 2, 6))


def test_pool_distribution_failover_and_books(
    make_live_server: Any, upstreams: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    east, west = upstreams
    server = make_live_server(CONFIG.format(east=east.base_url, west=west.base_url))
    email = "pool@example.com"
    key = server.create_key(email=email, usd=1.0)

    east.script(Scripted(status=429, body={"error": {"message": "quota"}}, headers={"retry-after": "60"}))
    responses = [chat(server, key, f"request {i} words", model="pool/gpt") for i in range(60)]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    # East's 429 moved its request to west at once (east not retried although max_retries is 2),
    # and east rests for its Retry-After (60 s): every request was answered by west, no error.
    served = Counter(r.headers["x-modelgate-provider"] for r in responses)
    print("pool weighted 3:1 over 60 requests, east rate limited on its first request:", dict(served))
    assert served == Counter({"west": 60}) and len(east.requests) == 1
    # Exact books: each answer charged at the prices of the deployment that answered.
    charged = 0
    for r in responses:
        prices = (1.0, 2.0) if r.headers["x-modelgate-provider"] == "east" else (4.0, 8.0)
        credits = int(r.headers["x-aimlapi-credits-used"])
        assert credits == _price(r.json()["usage"], *prices)
        charged += credits
    streamed = chat(server, key, "a streamed one", model="pool/gpt", stream=True)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    assert streamed.headers["x-modelgate-provider"] == "west"
    assert_books_balance(server, email, key, initial_credits=2_000_000, requests_made=61)
    chunks = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    charged += chunks[-1]["meta"]["usage"]["credits_used"]
    assert sum(row["cost"]["credits"] for row in all_logs(server, key)) == charged


def test_pool_spreads_by_weight(make_live_server: Any, upstreams: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    east, west = upstreams
    server = make_live_server(CONFIG.format(east=east.base_url, west=west.base_url))
    key = server.create_key(usd=1.0)
    served = Counter(
        chat(server, key, "hi", model="pool/gpt").headers["x-modelgate-provider"] for _ in range(80)
    )
    print("pool weighted 3:1 over 80 requests:", dict(served))
    assert served["east"] > served["west"] > 0 and served["east"] + served["west"] == 80
