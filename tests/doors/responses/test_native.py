"""The Responses door on a route that speaks Responses (``options: {responses: true}``): the body and
the events cross byte for byte apart from the model name; hosted tools, encrypted reasoning and the
upstream's own conversation state pass through; usage is read for billing on the way."""

from __future__ import annotations

import math
import time
from typing import Any

import openai
import pytest
import requests
from pydantic import BaseModel

from tests.conftest import LiveServer
from tests.doors.responses.spec import check_events, check_response, parse_sse
from tests.fakes import Reply
from tests.fakes.responses_server import ResponsesFake

UPSTREAM = b'"model":"gpt-fake-upstream"'
CLIENT = b'"model":"gpt-fake"'


def credits(prompt: int, output: int) -> int:  # openai/gpt-fake: $1 in, $2 out per Mtok
    return math.ceil(round((prompt * 1.0 + output * 2.0) * 2, 6))


# Deliberately unusual JSON: spacing, key order, escapes, an encrypted reasoning item, a hosted tool and
# a field no SDK knows yet. Everything but the model must reach the upstream as these very bytes.
BODY = (
    b'{ "input" : [ {"type":"reasoning","id":"rs_prev","summary":[],'
    b'"encrypted_content":"gAAAA\\u00e9-opaque=="},\n'
    b' {"role":"user","content":"caf\\u00e9  au lait"} ],\n'
    b'  "model":   "gpt-fake", "include":["reasoning.encrypted_content"],'
    b' "tools":[{"type":"web_search","search_context_size":"low"}],'
    b' "reasoning":{"effort":"high","summary":"auto"},"future_field":{"x":[1,2.50,true]} }'
)


def test_body_and_answer_cross_byte_for_byte(server: LiveServer, responses_up: ResponsesFake) -> None:
    key = server.create_key()
    r = requests.post(
        f"{server.url}/v1/responses",
        data=BODY,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", "OpenAI-Beta": "x=1"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    sent = responses_up.last
    assert sent.body == BODY.replace(b'"gpt-fake"', b'"gpt-fake-upstream"')
    assert sent.headers["Authorization"] == "Bearer test-openai-key" and sent.headers["openai-beta"] == "x=1"
    upstream_answer = responses_up.sent[-1]
    assert UPSTREAM in upstream_answer
    assert r.content == upstream_answer.replace(UPSTREAM, CLIENT)
    body = r.json()
    check_response(body)
    assert [i["type"] for i in body["output"]] == ["reasoning", "web_search_call", "message"]
    assert body["output"][0]["encrypted_content"].startswith("gAAAA-encrypted")
    assert "x-modelgate-dropped-tools" not in r.headers  # a native route runs hosted tools itself
    usage = body["usage"]
    assert r.headers["x-aimlapi-credits-used"] == str(credits(usage["input_tokens"], usage["output_tokens"]))
    assert r.headers["x-modelgate-provider"] == "oai"


def test_stream_crosses_byte_for_byte(server: LiveServer, responses_up: ResponsesFake) -> None:
    key = server.create_key()
    body = BODY.replace(b'"model":', b'"stream":true, "model":')
    r = requests.post(
        f"{server.url}/v1/responses",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200
    assert responses_up.last.body == body.replace(b'"gpt-fake"', b'"gpt-fake-upstream"')
    upstream = responses_up.sent[-1]
    assert r.content == upstream.replace(UPSTREAM, CLIENT)  # only the response events name a model
    assert r.content.count(CLIENT) == 3  # created, in_progress, completed
    events = parse_sse(r.content)
    check_events(events)
    final = events[-1]["response"]
    assert final["model"] == "gpt-fake" and final["output"][0]["encrypted_content"]
    stored = requests.get(
        f"{server.url}/v1/responses/{final['id']}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert stored.json() == final  # kept (store defaults to true) before the last event was sent


def test_sdk_create_stream_and_billing(server: LiveServer, responses_up: ResponsesFake) -> None:
    key = server.create_key()
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    resp = c.responses.create(model="gpt-fake", input="hello there")
    assert resp.model == "gpt-fake" and resp.output_text == "hello there" and resp.id.startswith("resp_fake")
    with c.responses.stream(model="gpt-fake", input="one two") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "one two" and final.output_text == "one two"
    assert final.usage is not None
    logs = requests.get(
        f"{server.url}/v2/logs?period=24h", headers={"Authorization": f"Bearer {key}"}, timeout=10
    ).json()["data"]
    assert {item["door"] for item in logs} == {"responses"} and len(logs) == 2
    assert sorted(item["cost"]["credits"] for item in logs) == sorted([credits(11, 2), credits(11, 2)])


class Weather(BaseModel):
    city: str
    celsius: int


def test_sdk_parse_tools_and_upstream_state(server: LiveServer, responses_up: ResponsesFake) -> None:
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key(), max_retries=0)
    parsed = c.responses.parse(model="gpt-fake", input="weather?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", celsius=42)
    tool = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    }
    first = c.responses.create(model="gpt-fake", input="Weather in Paris?", tools=[tool])  # type: ignore[list-item]
    call = first.output[0]
    assert call.type == "function_call" and call.arguments == '{"city":"Paris"}'
    second = c.responses.create(
        model="gpt-fake",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C"}],
    )
    assert second.output_text == "tool said: 18C"
    # the upstream keeps its own conversation: the id passed through unchanged
    assert responses_up.last.json["previous_response_id"] == first.id
    third = c.responses.create(model="gpt-fake", input="and now?", previous_response_id=second.id)
    assert third.output_text.startswith("[")  # the fake saw the stored conversation
    assert c.responses.retrieve(third.id).output_text == third.output_text
    assert [i.type for i in c.responses.input_items.list(second.id).data] == ["function_call_output"]


def test_errors(server: LiveServer, responses_up: ResponsesFake) -> None:
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key(), max_retries=0)
    with pytest.raises(openai.NotFoundError) as unknown:
        c.responses.create(model="gpt-fake", input="x", previous_response_id="resp_fake999999")
    assert unknown.value.code == "previous_response_not_found"
    assert responses_up.requests == []  # refused before the upstream: not this account's response
    upstream_error = {
        "error": {"message": "Invalid 'input[0]'.", "type": "invalid_request_error", "param": "input"}
    }
    responses_up.add(Reply(status=400, body=upstream_error))
    with pytest.raises(openai.BadRequestError) as bad:
        c.responses.create(model="gpt-fake", input="x")
    assert "Invalid 'input[0]'" in bad.value.message


def test_error_event_mid_stream(server: LiveServer, responses_up: ResponsesFake) -> None:
    from tests.fakes import SSE, SSEReply

    created: dict[str, Any] = {
        "id": "resp_x",
        "object": "response",
        "model": "gpt-fake-upstream",
        "output": [],
    }
    responses_up.add(
        SSEReply(
            [
                SSE(
                    {"type": "response.created", "sequence_number": 0, "response": created},
                    event="response.created",
                ),
                SSE(
                    {
                        "type": "error",
                        "sequence_number": 1,
                        "code": "server_error",
                        "message": "boom",
                        "param": None,
                    },
                    event="error",
                ),
            ]
        )
    )
    key = server.create_key()
    r = requests.post(
        f"{server.url}/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-fake", "input": "x", "stream": True},
        timeout=30,
    )
    events = parse_sse(r.content)
    assert [e["type"] for e in events] == ["response.created", "error"]
    assert events[0]["response"]["model"] == "gpt-fake"
    assert events[1]["sequence_number"] == 1 and "boom" in events[1]["message"]
    assert events[1]["code"] == "server_error"


def test_a_conversation_held_here_continues_on_a_native_route(
    server: LiveServer, responses_up: ResponsesFake
) -> None:
    # The first turn ran on a chat route (stored by modelgate): the Responses upstream has never seen
    # it, so modelgate sends the conversation itself instead of the previous_response_id.
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key(), max_retries=0)
    first = c.responses.create(model="echo", input="I am Ada")
    second = c.responses.create(model="gpt-fake", input="who am I?", previous_response_id=first.id)
    sent = responses_up.last.json
    assert "previous_response_id" not in sent and sent["model"] == "gpt-fake-upstream"
    assert sent["input"] == [
        {"type": "message", "role": "user", "content": "I am Ada"},
        {
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "I am Ada", "annotations": [], "logprobs": []}],
        },
        {"type": "message", "role": "user", "content": "who am I?"},
    ]
    # and the native answer is stored here too: the chain goes on through the upstream's own state
    third = c.responses.create(model="gpt-fake", input="still?", previous_response_id=second.id)
    assert responses_up.last.json["previous_response_id"] == second.id
    assert third.output_text == "[4 items] still?"  # the 3 inputs and 1 output of the second turn


def test_response_cache_keeps_unstored_native_answers_only(
    server: LiveServer, responses_up: ResponsesFake
) -> None:
    """A stored answer passed through keeps the upstream's id (stored once): the response cache does
    not keep it, so a repeat is a fresh upstream call; with store false it is served from the cache."""
    key = server.create_key()
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    exact = {"x-modelgate-cache": "exact"}
    calls = len(responses_up.requests)
    first = client.responses.create(model="gpt-fake", input="stored", extra_headers=exact)
    second = client.responses.with_raw_response.create(model="gpt-fake", input="stored", extra_headers=exact)
    assert "x-modelgate-cache" not in second.headers and len(responses_up.requests) == calls + 2
    assert client.responses.retrieve(first.id).id == first.id
    unstored: dict[str, Any] = {
        "model": "gpt-fake",
        "input": "not stored",
        "store": False,
        "extra_headers": exact,
    }
    client.responses.create(**unstored)
    deadline = time.monotonic() + 20
    while "x-modelgate-cache" not in (again := client.responses.with_raw_response.create(**unstored)).headers:
        assert time.monotonic() < deadline, "never served from the cache"
    assert again.headers["x-modelgate-cache"] == "hit:exact"
