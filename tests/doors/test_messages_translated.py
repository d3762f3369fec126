"""The Messages door on routes that are not Anthropic: the official SDK against modelgate routed to
the OpenAI-compatible fake (and the embedded model), translated both ways, event by event."""

from __future__ import annotations

import base64
import concurrent.futures
import math
from typing import Any

import anthropic
import pytest
import requests

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted


def client(server: LiveServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)


def credits(prompt: int, output: int) -> int:  # mock/echo: $1 in, $2 out per Mtok
    return math.ceil(round((prompt * 1.0 + output * 2.0) * 2, 6))


def test_create_and_system_prompt(door_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = door_server.create_key()
    msg = client(door_server, key).messages.create(
        model="echo",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": "one two three"}],
        stop_sequences=["END"],
        metadata={"user_id": "u-42"},
    )
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.content[0].type == "text" and msg.content[0].text == "one two three"
    assert msg.stop_reason == "end_turn" and msg.usage.input_tokens == 11 and msg.usage.output_tokens == 3
    sent = openai_upstream.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["stop"] == ["END"] and sent["user"] == "u-42" and sent["max_tokens"] == 64


def test_stream_events_in_order(door_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.script(Scripted(reasoning="let me think", text="alpha beta"))
    key = door_server.create_key(usd=1.0)
    with client(door_server, key).messages.stream(
        model="echo",
        max_tokens=2048,
        messages=[{"role": "user", "content": "hi"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "message_delta" in kinds
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "let me think" and final.content[1].text.strip() == "alpha beta"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    sent = openai_upstream.requests[-1]
    assert sent["stream"] is True


def test_tools_and_tool_result_turn(door_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"SF"}'},
    }
    openai_upstream.script(
        Scripted(
            body={
                "id": "c1",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
            }
        )
    )
    key = door_server.create_key()
    tools: list[Any] = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"type": "web_search_20250305", "name": "web_search"},
    ]
    c = client(door_server, key)
    first = c.messages.create(
        model="echo",
        max_tokens=64,
        tools=tools,
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather?"}],
    )
    assert first.stop_reason == "tool_use"
    use = first.content[0]
    assert (
        use.type == "tool_use"
        and use.id == "call_1"
        and use.name == "get_weather"
        and use.input == {"city": "SF"}
    )
    sent = openai_upstream.requests[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]  # server tool left out
    assert sent["tool_choice"] == "required"
    second = c.messages.create(
        model="echo",
        max_tokens=64,
        tools=tools[:1],
        messages=[
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [use.model_dump()]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                    {"type": "text", "text": "and tomorrow"},
                ],
            },
        ],
    )
    assert second.content[0].text == "and tomorrow"
    msgs = openai_upstream.requests[-1]["messages"]
    assert msgs[1]["tool_calls"][0]["id"] == "call_1"
    assert msgs[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


def test_image_block_becomes_data_url(door_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = door_server.create_key()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 20).decode()
    client(door_server, key).messages.create(
        model="echo",
        max_tokens=16,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                    {"type": "text", "text": "what is it"},
                ],
            }
        ],
    )
    parts = openai_upstream.requests[-1]["messages"][0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}


def test_count_tokens_estimate_is_free(door_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = door_server.create_key()
    got = client(door_server, key).messages.count_tokens(
        model="echo", messages=[{"role": "user", "content": "x" * 350}]
    )
    assert got.input_tokens >= 100  # 350 chars at 3.5 a token, plus framing
    assert openai_upstream.requests == []


def test_bad_block_is_a_400_naming_it(door_server: LiveServer) -> None:
    key = door_server.create_key()
    with pytest.raises(anthropic.BadRequestError) as bad:
        client(door_server, key).messages.create(
            model="echo",
            max_tokens=16,
            messages=[
                {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}
            ],
        )
    assert "messages[0].content[0].source.type" in bad.value.message
    assert bad.value.body["error"]["type"] == "invalid_request_error"


def test_parallel_requests_at_the_balance_never_overspend(door_server: LiveServer) -> None:
    # Each request holds (estimate + 32 out) and is charged its real usage; a balance that covers a few
    # holds must refuse the rest and charge exactly what was served.
    key = door_server.create_key(usd=0.0005)  # 1,000 credits
    body = {"model": "echo", "max_tokens": 32, "messages": [{"role": "user", "content": "a b c d"}]}

    def one(_: int) -> requests.Response:
        return requests.post(
            f"{door_server.url}/v1/messages", json=body, headers={"x-api-key": key}, timeout=60
        )

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(40)))
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code != 200]
    assert ok and refused
    # Out of credits is Anthropic's billing error, worded as agents recognise it, never retried.
    assert all(r.status_code == 402 and r.json()["error"]["type"] == "billing_error" for r in refused)
    assert all("credit balance is too low" in r.json()["error"]["message"] for r in refused)
    assert all(r.headers["x-should-retry"] == "false" for r in refused)
    charged = sum(int(r.headers["x-aimlapi-credits-used"]) for r in ok)
    assert charged == len(ok) * credits(11, 4)
    billing = requests.get(
        f"{door_server.url}/v2/billing", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert billing.status_code == 200
    logs = requests.get(
        f"{door_server.url}/v2/logs?period=24h&limit=100",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()["data"]
    assert sum(item["cost"]["credits"] for item in logs) == charged
    assert {item["door"] for item in logs} == {"messages"}
    balance = billing.json()
    assert _credits_left(balance) == 1000 - charged


def _credits_left(billing: dict[str, Any]) -> int:
    return round(billing["current_balance"] * 2_000_000)


@pytest.mark.local_model
def test_local_model_via_messages(door_server: LiveServer) -> None:
    key = door_server.create_key()
    c = client(door_server, key)
    msg = c.messages.create(model="smollm2", max_tokens=12, messages=[{"role": "user", "content": "Say hi"}])
    assert msg.content and msg.content[0].type == "text" and msg.usage.output_tokens > 0
    assert msg.stop_reason in ("end_turn", "max_tokens")
    with c.messages.stream(model="smollm2", max_tokens=12, messages=[{"role": "user", "content": "Hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text and final.usage.output_tokens > 0
