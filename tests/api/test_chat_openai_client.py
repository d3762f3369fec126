"""The official ``openai`` Python client against a live modelgate (fake OpenAI-compatible upstream)."""

from __future__ import annotations

import openai
import pytest
import requests

from tests.fakes.openai_server import Scripted
from tests.spec_helpers import response_schema, validate

CHAT_SPEC = "chat-gemini-2.5-pro.json"


@pytest.fixture
def client(live_server):
    key = live_server.create_key()
    c = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0, timeout=20)
    yield c
    c.close()


def test_non_stream_completion_matches_spec(client, openai_upstream):
    raw = client.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "ping pong"}], max_tokens=50
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "ping pong"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "mock/echo"
    assert completion.usage.prompt_tokens == 11
    assert completion.usage.completion_tokens == 2
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0
    body = raw.http_response.json()
    validate(body, response_schema(CHAT_SPEC, "/v1/chat/completions", "post"))
    # credits: 11 * 1.0 + 2 * 2.0 = 15 micro-USD = 30 credits
    assert body["meta"]["usage"] == {"credits_used": 30, "usd_spent": 0.000015}
    assert raw.headers["x-aimlapi-credits-used"] == "30"
    assert raw.headers["x-aimlapi-usd-spent"] == "0.000015000"
    assert raw.headers["x-inference-id"] == body["id"].removeprefix("chatcmpl-")
    sent = openai_upstream.requests[-1]
    assert sent["model"] == "mock-model" and sent["max_tokens"] == 50 and sent["stream"] is False
    assert openai_upstream.headers[-1]["Authorization"] == "Bearer sk-mock"


def test_stream_with_usage(client, openai_upstream):
    stream = client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == 11 and last.usage.completion_tokens == 3
    assert last.model_extra["meta"]["usage"]["credits_used"] == 2 * (11 + 3 * 2)
    assert openai_upstream.requests[-1]["stream_options"] == {"include_usage": True}
    assert openai_upstream.requests[-1]["max_tokens"] == 512


def test_stream_without_usage_still_ends_with_meta(live_server, openai_upstream):
    key = live_server.create_key()
    r = requests.post(
        f"{live_server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": "a b"}]},
        stream=True,
        timeout=10,
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "x-aimlapi-credits-used" not in r.headers and r.headers["x-inference-id"]
    lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == b"data: [DONE]"
    import json

    final = json.loads(lines[-2][len(b"data: ") :])
    # Without include_usage no chunk may have ``choices: []`` (``chunk.choices[0]`` loops crash on
    # it): meta.usage rides on the last chunk with choices, the one that finishes.
    assert final["choices"][0]["finish_reason"] == "stop" and "usage" not in final
    assert final["meta"]["usage"]["credits_used"] > 0
    chunks = [json.loads(ln[len(b"data: ") :]) for ln in lines[:-1]]
    assert all(c["choices"] for c in chunks)


def test_openai_sdk_stream_loop_indexes_choices_safely(client, live_server):
    """The common ``chunk.choices[0]`` loop over a stream without include_usage never fails."""
    stream = client.chat.completions.create(
        model="echo", stream=True, messages=[{"role": "user", "content": "one two three"}]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text


def test_typed_errors(client, live_server):
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="echo", messages=[], max_tokens=5)
    assert bad.value.status_code == 400
    assert "messages" in bad.value.message
    body = bad.value.response.json()
    assert body["statusCode"] == 400 and body["path"] == "/v1/chat/completions"
    assert body["requestId"] and body["timestamp"].endswith("Z")
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["param"] == "messages"

    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="no/such-model", messages=[{"role": "user", "content": "x"}])
    assert "no/such-model" in nf.value.message
    assert nf.value.body["code"] == "model_not_found"

    anon = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="0" * 32, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        anon.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])
    assert auth.value.status_code == 401
    anon.close()


def test_missing_key_is_401(live_server):
    r = requests.post(
        f"{live_server.url}/v1/chat/completions", json={"model": "echo", "messages": []}, timeout=5
    )
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"


def test_unconfigured_provider_is_503_naming_the_setting(client):
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model="mock/unconfigured", messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 503
    assert "provider nokey is not configured: set MODELGATE_TEST_UNSET_KEY" in exc.value.message


def test_upstream_errors_map_to_envelope(client, openai_upstream):
    openai_upstream.script(Scripted(status=400, body={"error": {"message": "bad temperature", "type": "x"}}))
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])
    assert "bad temperature" in bad.value.message

    openai_upstream.script(
        Scripted(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "7"})
    )
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])

    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    with pytest.raises(openai.InternalServerError) as e500:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])
    assert e500.value.status_code == 502

    openai_upstream.script(Scripted(status=200, body=b"{not json"))
    with pytest.raises(openai.InternalServerError) as bad_json:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])
    assert bad_json.value.status_code == 502 and "not JSON" in bad_json.value.message

    openai_upstream.script(Scripted(reset=True))
    with pytest.raises(openai.InternalServerError) as reset:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])
    assert reset.value.status_code == 502


def test_slow_upstream_times_out_504(client, openai_upstream):
    openai_upstream.script(Scripted(delay=4.0))  # first_byte timeout is 3 s in the test config
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 504


def test_stream_reset_mid_stream_is_one_error_frame(live_server, openai_upstream):
    key = live_server.create_key()
    openai_upstream.script(Scripted(text="a b c d e f", reset_after_chunks=3))
    r = requests.post(
        f"{live_server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        stream=True,
        timeout=10,
    )
    assert r.status_code == 200
    lines = [ln for ln in r.iter_lines() if ln]
    import json

    assert b"[DONE]" not in lines[-1]
    err = json.loads(lines[-1][len(b"data: ") :])
    assert err["error"]["type"] == "upstream_error"
    assert sum(1 for ln in lines if b'"error"' in ln) == 1
    data = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert all("choices" in d for d in data) and len(data) == 3


def test_stream_error_before_first_chunk_is_http_error(client, openai_upstream):
    openai_upstream.script(Scripted(status=503, body={"error": {"message": "overloaded"}}))
    with pytest.raises(openai.APIStatusError) as exc:
        list(
            client.chat.completions.create(
                model="echo", stream=True, messages=[{"role": "user", "content": "x"}]
            )
        )
    assert exc.value.status_code == 503


def test_reasoning_passthrough(client, openai_upstream):
    openai_upstream.script(Scripted(text="answer", reasoning="thinking hard"))
    c = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "q"}])
    assert c.choices[0].message.content == "answer"
    assert c.choices[0].message.model_extra["reasoning_content"] == "thinking hard"

    openai_upstream.script(Scripted(text="answer", reasoning="deep"))
    chunks = list(
        client.chat.completions.create(model="echo", stream=True, messages=[{"role": "user", "content": "q"}])
    )
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices
    )
    assert reasoning == "deep"


def test_client_request_id_echo_and_drop(live_server):
    key = live_server.create_key()
    url = f"{live_server.url}/v1/chat/completions"
    body = {"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    ok = requests.post(
        url,
        json=body,
        headers={"Authorization": f"Bearer {key}", "X-Client-Request-Id": "order-8f21c4"},
        timeout=5,
    )
    assert ok.headers["x-client-request-id"] == "order-8f21c4"
    bad = requests.post(
        url,
        json=body,
        headers={"Authorization": f"Bearer {key}", "X-Client-Request-Id": "bad id!"},
        timeout=5,
    )
    assert bad.status_code == 200 and "x-client-request-id" not in bad.headers
    cors = requests.post(
        url, json=body, headers={"Authorization": f"Bearer {key}", "Origin": "https://app.example"}, timeout=5
    )
    exposed = cors.headers["access-control-expose-headers"].lower()
    for h in ("x-inference-id", "x-client-request-id", "x-aimlapi-credits-used", "x-aimlapi-usd-spent"):
        assert h in exposed


def test_stream_chunks_are_forwarded_as_they_arrive(live_server, openai_upstream):
    """The first content chunk reaches the client long before the upstream finishes."""
    import time

    key = live_server.create_key()
    openai_upstream.script(Scripted(text="w1 w2 w3 w4", chunk_delay=0.4))
    started = time.monotonic()
    r = requests.post(
        f"{live_server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        stream=True,
        timeout=20,
    )
    arrivals = []
    for line in r.iter_lines():
        if line.startswith(b"data: {") and b'"content"' in line:
            arrivals.append(time.monotonic() - started)
    total = time.monotonic() - started
    assert len(arrivals) >= 4
    assert total > 1.6
    assert arrivals[1] < total - 0.8  # early chunks were not held back until the end


def test_cors_preflight_and_other_methods_reach_fastapi(live_server):
    url = f"{live_server.url}/v1/chat/completions"
    pre = requests.options(
        url,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-client-request-id",
        },
        timeout=5,
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] in ("*", "https://app.example")
    assert "POST" in pre.headers["access-control-allow-methods"]
    wrong = requests.get(url, timeout=5)  # not the fast path: FastAPI answers in the envelope
    assert wrong.status_code == 405 and wrong.json()["statusCode"] == 405
