"""``POST /v1/responses/input_tokens`` (``client.responses.input_tokens.count``): the upstream's own
count on a native Responses route that has the endpoint, the door's prompt bound elsewhere; admitted
as the Responses door admits (key, model, previous_response_id of the caller's own), never charged."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
import requests

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.responses_server import ResponsesFake


def _post(server: LiveServer, key: str, body: Any) -> requests.Response:
    return requests.post(
        f"{server.url}/v1/responses/input_tokens",
        headers={"Authorization": f"Bearer {key}"},
        json=body,
        timeout=30,
    )


def _balance(server: LiveServer, key: str) -> float:
    auth = {"Authorization": f"Bearer {key}"}
    return float(requests.get(f"{server.url}/v2/billing", headers=auth, timeout=10).json()["current_balance"])


def test_translated_route_estimates_high_and_charges_nothing(
    server: LiveServer, client: openai.OpenAI, openai_upstream: FakeOpenAI
) -> None:
    before = len(openai_upstream.requests)
    balance = _balance(server, client.api_key)
    short = client.responses.input_tokens.count(model="echo", input="Tell me a joke.")
    assert short.object == "response.input_tokens"
    assert short.input_tokens >= 11  # what the chat fake reports for any prompt: the bound leans high
    long = client.responses.input_tokens.count(
        model="echo",
        instructions="Answer in French.",
        input=[{"role": "user", "content": "Tell me a joke about " + "very " * 200 + "long words."}],
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}],
    )
    assert long.input_tokens > short.input_tokens + 200
    assert len(openai_upstream.requests) == before  # nothing went upstream
    assert _balance(server, client.api_key) == balance  # not charged


def test_native_route_forwards_to_the_upstreams_count(
    server: LiveServer, client: openai.OpenAI, responses_up: ResponsesFake
) -> None:
    counted = client.responses.input_tokens.count(
        model="gpt-fake",
        input=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        reasoning={"effort": "low"},
    )
    assert counted.input_tokens == 1002  # the fake's answer: 1000 + two items
    sent = responses_up.last
    assert sent.path == "/v1/responses/input_tokens"
    body = orjson.loads(sent.body)
    assert body["model"] == "gpt-fake-upstream" and body["reasoning"] == {"effort": "low"}
    assert sent.headers["Authorization"] == "Bearer test-openai-key"


def test_native_route_without_the_endpoint_estimates(
    server: LiveServer, client: openai.OpenAI, responses_up: ResponsesFake
) -> None:
    responses_up.counts = False
    counted = client.responses.input_tokens.count(model="gpt-fake", input="Tell me a joke.")
    assert responses_up.last.path == "/v1/responses/input_tokens"  # asked, answered 404
    assert 11 <= counted.input_tokens < 1000


def test_errors_in_openais_envelope(server: LiveServer, client: openai.OpenAI) -> None:
    key = client.api_key
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.input_tokens.count(model="no-such-model", input="hi")
    assert isinstance(missing.value.body, dict) and missing.value.body.get("param") == "model"
    bad = _post(server, key, {"model": "echo", "input": 5})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input", bad.text
    assert _post(server, key, {"input": "hi"}).json()["error"]["param"] == "model"
    refused = _post(server, key, {"model": "echo", "input": "hi", "conversation": "conv_1"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "conversation"
    assert _post(server, "sk-wrong", {"model": "echo", "input": "hi"}).status_code == 401
    scoped = server.create_key(scopes=["model:embeddings"])
    assert _post(server, scoped, {"model": "echo", "input": "hi"}).status_code == 403


def test_previous_response_id_counts_the_stored_conversation(
    server: LiveServer, client: openai.OpenAI
) -> None:
    first = client.responses.create(model="echo", input="remember " + "this " * 300)
    alone = client.responses.input_tokens.count(model="echo", input="and now?")
    chained = client.responses.input_tokens.count(
        model="echo", input="and now?", previous_response_id=first.id
    )
    assert chained.input_tokens > alone.input_tokens + 300
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.input_tokens.count(model="echo", input="hi", previous_response_id="resp_nope")
    assert isinstance(unknown.value.body, dict) and unknown.value.body.get("param") == "previous_response_id"
    other = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=server.create_key(email="other@example.com"), max_retries=0
    )
    with pytest.raises(openai.NotFoundError):  # another account's response is unknown to this one
        other.responses.input_tokens.count(model="echo", input="hi", previous_response_id=first.id)
    other.close()
