"""The Anthropic adapter's tool calls and structured output (a forced json_response tool)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelgate.providers.anthropic import AnthropicProvider
from tests.fakes import Reply, load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_sse
from tests.fakes.calls import build_call
from tests.providers.anthropic_kit import HI, SONNET, TOOLS, collect, finishes, joined

# --- tools --------------------------------------------------------------------------------


async def test_tool_call_round_trip(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_tool_use.json")))
    messages = [
        {"role": "user", "content": "Weather and time in SF?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "toolu_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "SF"}'},
                },
                {"id": "toolu_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_a", "content": "15 degrees"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": [{"type": "text", "text": "09:30"}]},
        {"role": "user", "content": "Thanks. Tomorrow?"},
    ]
    call = build_call(
        SONNET,
        {
            "messages": messages,
            "tools": TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
        },
    )
    result = await anthropic_adapter.complete(call)

    body = anthropic_fake.last.json
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather and time in SF?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"location": "SF"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "15 degrees"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "09:30"},
                {"type": "text", "text": "Thanks. Tomorrow?"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": TOOLS[0]["function"]["parameters"],
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}

    [choice] = result.choices
    assert choice["finish_reason"] == "tool_calls"
    msg = choice["message"]
    assert msg["content"] == "I'll check the current weather in San Francisco for you."
    assert msg["tool_calls"] == [
        {
            "id": "toolu_01A09q90qw90lq917835lq9",
            "type": "function",
            "function": {
                "name": "get_weather",
                "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
            },
        }
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
async def test_tool_choice_mapping(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider, choice: str, expected: dict[str, Any]
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")))
    await anthropic_adapter.complete(
        build_call(SONNET, {"messages": HI, "tools": TOOLS, "tool_choice": choice})
    )
    assert anthropic_fake.last.json["tool_choice"] == expected


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp_c": {"type": "number"}},
    "required": ["city", "temp_c"],
}


def _output_message(inp: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "json_response", "input": inp}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 12},
    }


async def test_structured_output_through_a_forced_tool(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=_output_message({"city": "Paris", "temp_c": 21})))
    rf = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}}
    result = await anthropic_adapter.complete(build_call(SONNET, {"messages": HI, "response_format": rf}))
    sent = anthropic_fake.last.json
    assert sent["tools"] == [{"name": "json_response", "description": ANY_STR, "input_schema": SCHEMA}]
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    msg = result.choices[0]["message"]
    assert json.loads(msg["content"]) == {"city": "Paris", "temp_c": 21} and "tool_calls" not in msg
    assert result.choices[0]["finish_reason"] == "stop"


async def test_structured_output_streams_as_content(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    events = [
        {
            "event": "message_start",
            "data": {
                "type": "message_start",
                "message": {
                    "id": "m",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "x",
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 9, "output_tokens": 1},
                },
            },
        },
        {
            "event": "content_block_start",
            "data": {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "json_response", "input": {}},
            },
        },
        {
            "event": "content_block_delta",
            "data": {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"ok":'},
            },
        },
        {
            "event": "content_block_delta",
            "data": {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": " true}"},
            },
        },
        {"event": "content_block_stop", "data": {"type": "content_block_stop", "index": 0}},
        {
            "event": "message_delta",
            "data": {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 7},
            },
        },
        {"event": "message_stop", "data": {"type": "message_stop"}},
    ]
    anthropic_fake.add(anthropic_sse(events))
    call = build_call(SONNET, {"messages": HI, "stream": True, "response_format": {"type": "json_object"}})
    chunks = await collect(anthropic_adapter, call)
    assert anthropic_fake.last.json["tools"][0]["input_schema"] == {"type": "object"}
    assert json.loads(joined(chunks, "content")) == {"ok": True}
    assert finishes(chunks) == ["stop"]
    assert not [c for ch in chunks for c in ch.choices if c["delta"].get("tool_calls")]


async def test_structured_output_with_thinking_offers_the_tool(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=_output_message({"a": 1})))
    body = {
        "messages": HI,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
        "max_tokens": 4096,
    }
    result = await anthropic_adapter.complete(build_call(SONNET, body))
    sent = anthropic_fake.last.json
    assert "tool_choice" not in sent and "json_response" in sent["system"]
    assert json.loads(result.choices[0]["message"]["content"]) == {"a": 1}


class _AnyStr(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)

    __hash__ = str.__hash__


ANY_STR = _AnyStr()
