"""The Gemini adapter's tool calls, structured output and image/file parts."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate.errors import (
    InvalidRequestError,
)
from modelgate.providers.gemini import GeminiProvider
from tests.fakes import Reply, load
from tests.fakes.calls import build_call
from tests.fakes.gemini_server import GeminiFake, gemini_sse
from tests.providers.gemini_kit import HI, PRO, TOOLS, collect, finish_of, text_of

# --- tools --------------------------------------------------------------------------------


async def test_tool_call_round_trip(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_function_call.json")))
    messages = [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp_c": 21, "sky": "clear"}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "14:05"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    call = build_call(
        PRO,
        {
            "messages": messages,
            "tools": TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
    )
    result = await gemini_adapter.complete(call)

    body = gemini_fake.last.json
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21, "sky": "clear"}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "14:05"}}},
                {"text": "And tomorrow?"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parametersJsonSchema": TOOLS[0]["function"]["parameters"],
                },
                {"name": "get_time", "parametersJsonSchema": {"type": "object"}},
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }

    [choice] = result.choices
    assert choice["finish_reason"] == "tool_calls"
    msg = choice["message"]
    assert msg["content"] is None
    calls = msg["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert calls[0]["function"]["arguments"] == '{"location":"Paris","unit":"celsius"}'
    assert calls[1]["function"]["arguments"] == '{"timezone":"Europe/Paris"}'
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in calls)
    assert len({c["id"] for c in calls}) == 2
    assert all(len(c["id"]) > len("call_") + 8 for c in calls)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("none", {"mode": "NONE"}), ("auto", {"mode": "AUTO"}), ("required", {"mode": "ANY"})],
)
async def test_tool_choice_mapping(
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider, choice: str, expected: dict[str, Any]
) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    await gemini_adapter.complete(build_call(PRO, {"messages": HI, "tools": TOOLS, "tool_choice": choice}))
    assert gemini_fake.last.json["toolConfig"] == {"functionCallingConfig": expected}


async def test_tool_result_for_unknown_call_id_is_rejected(gemini_adapter: GeminiProvider) -> None:
    call = build_call(
        PRO, {"messages": [*HI, {"role": "tool", "tool_call_id": "call_missing", "content": "x"}]}
    )
    with pytest.raises(InvalidRequestError, match="call_missing"):
        await gemini_adapter.complete(call)


async def test_stream_function_call(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(gemini_sse(load("gemini_stream_function_call.json")))
    chunks = await collect(gemini_adapter, build_call(PRO, {"messages": HI, "tools": TOOLS, "stream": True}))
    deltas = [c["delta"]["tool_calls"] for ch in chunks for c in ch.choices if c["delta"].get("tool_calls")]
    assert len(deltas) == 1
    [tc] = deltas[0]
    assert tc["index"] == 0
    assert tc["id"].startswith("call_")
    assert tc["type"] == "function"
    assert tc["function"] == {"name": "get_weather", "arguments": '{"location":"Paris"}'}
    assert finish_of(chunks) == ["tool_calls"]
    assert text_of(chunks, "reasoning_content") == "**Looking up the weather**"


# --- structured output, images -----------------------------------------------------------------


async def test_json_schema(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_json_schema.json")))
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
        "required": ["name", "born"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    result = await gemini_adapter.complete(build_call(PRO, {"messages": HI, "response_format": fmt}))
    gen = gemini_fake.last.json["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert gen["responseJsonSchema"] == schema
    assert result.choices[0]["message"]["content"] == '{"name": "Ada Lovelace", "born": 1815}'
    # cached tokens reported, tool-use prompt tokens added to the prompt, nothing counted twice
    u = result.usage
    assert (u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens) == (45, 215, 201, 32)


async def test_json_object(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_json_schema.json")))
    await gemini_adapter.complete(
        build_call(PRO, {"messages": HI, "response_format": {"type": "json_object"}})
    )
    gen = gemini_fake.last.json["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in gen


async def test_image_parts(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?size=2"}},
    ]
    await gemini_adapter.complete(build_call(PRO, {"messages": [{"role": "user", "content": content}]}))
    assert gemini_fake.last.json["contents"][0]["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg?size=2"}},
    ]


async def test_file_parts_are_inline_data(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    content = [{"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x"}}]
    await gemini_adapter.complete(build_call(PRO, {"messages": [{"role": "user", "content": content}]}))
    assert gemini_fake.last.json["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}}
    ]
    bad = [{"type": "file", "file": {"file_data": "JVBERi0x"}}]
    with pytest.raises(InvalidRequestError, match="base64 data: URL"):
        await gemini_adapter.complete(build_call(PRO, {"messages": [{"role": "user", "content": bad}]}))


async def test_image_url_without_known_type_is_rejected(
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider
) -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/render?id=3"}}]
    with pytest.raises(InvalidRequestError, match="data: URL") as info:
        await gemini_adapter.complete(build_call(PRO, {"messages": [{"role": "user", "content": content}]}))
    assert info.value.status_code == 400
    assert info.value.param == "messages[0].content[0].image_url.url"
    assert gemini_fake.requests == []
