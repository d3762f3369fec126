"""The Messages door on an Anthropic route: the official SDK end to end, and the body and events
crossing byte for byte apart from the model name."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest
import requests

from tests.conftest import LiveServer
from tests.fakes import SSE, Reply, SSEReply, load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_error, anthropic_sse

UPSTREAM_MODEL = "claude-sonnet-4-5-20250929"


def client(server: LiveServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)


def credits_for(prompt: int, output: int, cached: int = 0) -> int:
    import math

    micro = (prompt - cached) * 3.0 + cached * 0.3 + output * 15.0
    return math.ceil(round(micro * 2, 6))


def test_sdk_create_passes_through(door_server: LiveServer, anthropic_up: AnthropicFake) -> None:
    anthropic_up.add(Reply(body=load("anthropic_text.json")))
    key = door_server.create_key()
    msg = client(door_server, key).messages.create(
        model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
    )
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello! How can I help you today?"
    assert msg.model == "claude-test" and msg.usage.output_tokens == 12
    sent = anthropic_up.last
    assert sent.json["model"] == UPSTREAM_MODEL and sent.headers["x-api-key"] == "test-anthropic-key"
    # The client's protocol version is forwarded, whatever it is.
    assert sent.headers["anthropic-version"] == client(door_server, key).default_headers["anthropic-version"]


def test_body_bytes_and_beta_header_cross_unchanged(
    door_server: LiveServer, anthropic_up: AnthropicFake
) -> None:
    upstream_reply = load("anthropic_thinking.json")
    anthropic_up.add(Reply(body=upstream_reply))
    key = door_server.create_key()
    # Odd spacing, unknown fields, cache_control, a thinking block with its signature, nested "model"
    # keys: everything must reach the upstream exactly as sent, apart from the model's value.
    raw = (
        b'{ "max_tokens":2048,"messages":[{"role":"user","content":[{"type":"text","text":"hi \\"model\\"",'
        b'"cache_control":{"type":"ephemeral"}}]},{"role":"assistant","content":[{"type":"thinking",'
        b'"thinking":"hmm","signature":"EqQBCkYIARgCIkB+sig=="},{"type":"text","text":"yo"}]},'
        b'{"role":"user","content":"again"}],\n  "metadata":{"model":"not-this-one"},'
        b'"thinking":{"type":"enabled","budget_tokens":1024},"future_field":{"x":[1,2,{"y":null}]},'
        b'  "model" : "claude-test" , "context_management":{"edits":[]}}'
    )
    r = requests.post(
        f"{door_server.url}/v1/messages?beta=true",
        data=raw,
        headers={
            "x-api-key": key,
            "content-type": "application/json",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "interleaved-thinking-2025-05-14,context-management-2025-06-27",
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    expected = raw.replace(b'"claude-test" ,', b'"' + UPSTREAM_MODEL.encode() + b'" ,')
    assert anthropic_up.last.body == expected
    assert anthropic_up.last.headers["anthropic-beta"] == (
        "interleaved-thinking-2025-05-14,context-management-2025-06-27"
    )
    body = r.json()
    assert body["model"] == "claude-test"
    assert body["content"] == upstream_reply["content"]  # signatures intact
    u = upstream_reply["usage"]
    prompt = u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"]
    cached = u["cache_read_input_tokens"]
    assert int(r.headers["x-aimlapi-credits-used"]) == credits_for(prompt, u["output_tokens"], cached)


def test_stream_events_cross_unchanged(door_server: LiveServer, anthropic_up: AnthropicFake) -> None:
    events = load("anthropic_stream_text.json")
    anthropic_up.add(anthropic_sse(events))
    key = door_server.create_key()
    r = requests.post(
        f"{door_server.url}/v1/messages",
        json={
            "model": "claude-test",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "Hi"}],
        },
        headers={"x-api-key": key},
        stream=True,
        timeout=30,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    got = r.content
    expected = b""
    for ev in events:
        data = json.dumps(ev["data"], separators=(",", ":")).encode()
        expected += b"event: " + ev["event"].encode() + b"\ndata: " + data + b"\n\n"
    expected = expected.replace(f'"model":"{UPSTREAM_MODEL}"'.encode(), b'"model":"claude-test"', 1)
    assert got == expected


def test_sdk_stream_and_billing(door_server: LiveServer, anthropic_up: AnthropicFake) -> None:
    events = load("anthropic_stream_text.json")
    anthropic_up.add(anthropic_sse(events))
    key = door_server.create_key(usd=1.0)
    with client(door_server, key).messages.stream(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.usage.output_tokens > 1
    start = events[0]["data"]["message"]["usage"]
    out = next(e["data"]["usage"]["output_tokens"] for e in events if e["event"] == "message_delta")
    expected = credits_for(start["input_tokens"], out)
    logs = _logs(door_server, key)
    assert logs[0]["door"] == "messages" and logs[0]["cost"]["credits"] == expected


def test_async_client_tools_and_tool_result_turn(
    door_server: LiveServer, anthropic_up: AnthropicFake
) -> None:
    anthropic_up.add(Reply(body=load("anthropic_tool_use.json")), Reply(body=load("anthropic_text.json")))
    key = door_server.create_key()
    tools: list[Any] = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
        }
    ]

    async def run() -> tuple[Any, Any]:
        c = anthropic.AsyncAnthropic(base_url=door_server.url, api_key=key, max_retries=0)
        first = await c.messages.create(
            model="claude-test",
            max_tokens=200,
            tools=tools,
            messages=[{"role": "user", "content": "Weather in SF?"}],
        )
        use = next(b for b in first.content if b.type == "tool_use")
        second = await c.messages.create(
            model="claude-test",
            max_tokens=200,
            tools=tools,
            messages=[
                {"role": "user", "content": "Weather in SF?"},
                {"role": "assistant", "content": [b.model_dump() for b in first.content]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "15C"}],
                },
            ],
        )
        await c.close()
        return first, second

    first, second = asyncio.run(run())
    assert first.stop_reason == "tool_use" and second.stop_reason == "end_turn"
    sent = anthropic_up.last.json["messages"]
    assert sent[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
        "content": "15C",
    }


def test_count_tokens_is_exact_and_free(door_server: LiveServer, anthropic_up: AnthropicFake) -> None:
    anthropic_up.add(Reply(body={"input_tokens": 42}))
    key = door_server.create_key(usd=1.0)
    got = client(door_server, key).messages.count_tokens(
        model="claude-test", messages=[{"role": "user", "content": "Hello"}]
    )
    assert got.input_tokens == 42
    assert anthropic_up.last.path == "/v1/messages/count_tokens"
    assert anthropic_up.last.json["model"] == UPSTREAM_MODEL
    assert _logs(door_server, key) == []


def test_typed_errors(door_server: LiveServer, anthropic_up: AnthropicFake) -> None:
    key = door_server.create_key()
    with pytest.raises(anthropic.AuthenticationError) as auth:
        client(door_server, "wrong-key").messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert auth.value.body["type"] == "error" and auth.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(door_server, key).messages.create(
            model="claude-nope", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client(door_server, key).messages.create(
            model="claude-test",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"temperature": 3},
        )
    assert "temperature" in bad.value.message
    # An upstream refusal keeps Anthropic's own type and wording (agents match on it).
    anthropic_up.add(anthropic_error(400))
    with pytest.raises(anthropic.BadRequestError) as upstream:
        client(door_server, key).messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    upstream_body = load("anthropic_errors.json")["400"]
    assert upstream.value.body["error"] == {
        "type": upstream_body["error"]["type"],
        "message": upstream_body["error"]["message"],
    }


def test_upstream_error_mid_stream_is_an_error_event(
    door_server: LiveServer, anthropic_up: AnthropicFake
) -> None:
    events = load("anthropic_stream_text.json")[:3]
    anthropic_up.add(
        SSEReply(
            [
                *(SSE(e["data"], event=e["event"]) for e in events),
                SSE(
                    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                    event="error",
                ),
            ]
        )
    )
    key = door_server.create_key()
    with (
        pytest.raises(anthropic.APIStatusError) as err,
        client(door_server, key).messages.stream(
            model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
        ) as stream,
    ):
        for _ in stream.text_stream:
            pass
    assert "Overloaded" in str(err.value)
    logs = _logs(door_server, key)
    assert logs[0]["status"] == "failed" and logs[0]["cost"]["credits"] == 0


def _logs(server: LiveServer, key: str) -> list[dict[str, Any]]:
    r = requests.get(
        f"{server.url}/v2/logs?period=24h", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def test_sdk_thinking_and_image_pass_through(door_server: LiveServer, anthropic_up: AnthropicFake) -> None:
    anthropic_up.add(Reply(body=load("anthropic_thinking.json")))
    key = door_server.create_key()
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    msg = client(door_server, key).messages.create(
        model="claude-test",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
    )
    kinds = [b.type for b in msg.content]
    assert "thinking" in kinds and msg.content[kinds.index("thinking")].signature
    sent = anthropic_up.last.json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["messages"][0]["content"][0]["source"]["data"] == png
