"""Billing through the Responses door (parallel requests at the balance never overspend; charges equal
the logs) and the embedded local model behind it."""

from __future__ import annotations

import concurrent.futures
import math
from typing import Any

import openai
import pytest
import requests
from pydantic import BaseModel, Field

from tests.conftest import LiveServer
from tests.doors.responses.spec import check_events, check_response, parse_sse


def credits(prompt: int, output: int) -> int:  # mock/echo and openai/gpt-fake: $1 in, $2 out per Mtok
    return math.ceil(round((prompt * 1.0 + output * 2.0) * 2, 6))


def test_parallel_requests_at_the_balance_never_overspend(server: LiveServer) -> None:
    # Each request holds (estimate + 32 out) and is charged its real usage (11 in, 4 out on both
    # fakes); a balance that covers a few holds must refuse the rest and charge exactly what was served.
    key = server.create_key(usd=0.0005)  # 1,000 credits
    bodies: list[dict[str, Any]] = [
        {"model": "echo", "input": "a b c d", "max_output_tokens": 32},
        {"model": "gpt-fake", "input": "a b c d", "max_output_tokens": 32, "stream": True},
        {"model": "echo", "input": "a b c d", "max_output_tokens": 32, "stream": True, "store": False},
        {"model": "gpt-fake", "input": "a b c d", "max_output_tokens": 32},
    ]

    def one(i: int) -> requests.Response:
        return requests.post(
            f"{server.url}/v1/responses",
            json=bodies[i % len(bodies)],
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(40)))
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code != 200]
    assert ok and refused
    assert all(r.status_code == 403 and r.json()["error"]["type"] == "permission_error" for r in refused)
    for r in ok:
        if r.headers["content-type"].startswith("text/event-stream"):
            events = parse_sse(r.content)
            assert events[-1]["type"] == "response.completed"
    charged = credits(11, 4) * len(ok)
    auth = {"Authorization": f"Bearer {key}"}
    logs = requests.get(f"{server.url}/v2/logs?period=24h&limit=100", headers=auth, timeout=60).json()["data"]
    served = [item for item in logs if item["cost"]["credits"]]
    assert len(served) == len(ok) and sum(item["cost"]["credits"] for item in logs) == charged
    assert {item["door"] for item in logs} == {"responses"}
    balance = requests.get(f"{server.url}/v2/billing", headers=auth, timeout=60).json()
    assert round(balance["current_balance"] * 2_000_000) == 1000 - charged >= 0


# Bounded strings make the constrained answer bounded: at most 2 x 40 characters, each at most 4
# byte tokens, plus the keys, punctuation, optional single spaces and the end token, well within
# the 512-token cap below. So the answer always completes and always parses (with unbounded strings
# the 135M model sometimes ran past its cap mid-string, and the test failed).
class Capital(BaseModel):
    country: str = Field(max_length=40)
    capital: str = Field(max_length=40)


@pytest.mark.local_model
def test_local_model_via_responses(server: LiveServer) -> None:
    key = server.create_key()
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)
    raw = c.responses.with_raw_response.create(model="smollm2", input="Say hi", max_output_tokens=16)
    resp = raw.parse()
    check_response(raw.http_response.json())
    assert resp.output_text and resp.usage is not None and resp.usage.output_tokens > 0
    assert resp.status in ("completed", "incomplete")
    with c.responses.stream(model="smollm2", input="Hi", max_output_tokens=16) as stream:
        events = list(stream)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    last = events[-1]  # completed, or incomplete when the 16 tokens ran out first
    assert last.type in ("response.completed", "response.incomplete")
    assert text and last.response.output_text == text  # type: ignore[union-attr]
    r = requests.post(
        f"{server.url}/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "smollm2", "input": "Count to three", "stream": True, "max_output_tokens": 16},
        timeout=120,
    )
    check_events(parse_sse(r.content))
    parsed = c.responses.parse(
        model="smollm2", input="The capital of France, as JSON.", text_format=Capital, max_output_tokens=512
    )
    assert parsed.status == "completed", parsed
    assert isinstance(parsed.output_parsed, Capital)
    assert parsed.usage is not None and parsed.usage.output_tokens <= 2 * 40 * 4 + 32
    follow = c.responses.create(
        model="smollm2", input="And Spain?", previous_response_id=resp.id, max_output_tokens=8
    )
    assert follow.previous_response_id == resp.id and follow.usage is not None
    assert follow.usage.input_tokens > resp.usage.input_tokens  # the first turn was sent again
