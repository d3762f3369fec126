"""The Anthropic adapter against a protocol-level fake of the Messages API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelgate.errors import (
    InvalidRequestError,
    UpstreamConnectionError,
    UpstreamStatusError,
)
from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import Chunk, Provider, ProviderCall, ProviderContext
from modelgate.providers.registry import ProviderTypeRegistry
from tests.fakes import Reply, load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_error, anthropic_sse
from tests.fakes.calls import build_call, builtin_model, provider_config

SONNET = "anthropic/claude-sonnet-4.5"
HI = [{"role": "user", "content": "Hello, Claude"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["location"],
            },
        },
    },
    {"type": "function", "function": {"name": "get_time"}},
]


@pytest.fixture
async def provider(anthropic_fake: AnthropicFake) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(
        "anthropic",
        provider_config("anthropic", anthropic_fake.base_url, api_key="test-anthropic-key"),
        ProviderContext(user_agent="modelgate-test"),
    )
    yield p
    await p.aclose()


async def collect(provider: AnthropicProvider, call: ProviderCall) -> list[Chunk]:
    return [c async for c in provider.stream(call)]


def joined(chunks: list[Chunk], key: str) -> str:
    return "".join(c["delta"].get(key) or "" for ch in chunks for c in ch.choices)


def finishes(chunks: list[Chunk]) -> list[str]:
    return [c["finish_reason"] for ch in chunks for c in ch.choices if c["finish_reason"]]


async def test_registered_as_type_anthropic_and_satisfies_protocol(anthropic_fake: AnthropicFake) -> None:
    factory = ProviderTypeRegistry.with_defaults().factory("anthropic")
    p = factory(
        "anthropic", provider_config("anthropic", anthropic_fake.base_url, api_key="k"), ProviderContext()
    )
    try:
        assert isinstance(p, Provider)
        assert (p.supports_tools, p.supports_vision, p.supports_json_schema, p.supports_streaming) == (
            True,
            True,
            True,  # structured output through a forced tool
            True,
        )
    finally:
        await p.aclose()


# --- text ---------------------------------------------------------------------------------


async def test_text_completion_request_and_response(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")))
    call = build_call(
        SONNET,
        {
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": "Answer in English."},
                *HI,
            ],
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 5,
            "stop": "END",
            "user": "user-42",
        },
    )
    result = await provider.complete(call)

    sent = anthropic_fake.last
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "test-anthropic-key"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["User-Agent"] == "modelgate-test"
    assert "Authorization" not in sent.headers
    assert sent.json == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 512,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello, Claude"}]}],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
    }
    assert result.upstream_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert result.choices == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    u = result.usage
    assert (u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens) == (12, 12, 0, 0)


async def test_max_tokens_is_always_sent(anthropic_fake: AnthropicFake, provider: AnthropicProvider) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")))
    await provider.complete(build_call(SONNET, {"messages": HI, "max_completion_tokens": 3000}))
    assert anthropic_fake.last.json["max_tokens"] == 3000


async def test_images(anthropic_fake: AnthropicFake, provider: AnthropicProvider) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")))
    content = [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "Describe both."},
    ]
    await provider.complete(build_call(SONNET, {"messages": [{"role": "user", "content": content}]}))
    assert anthropic_fake.last.json["messages"][0]["content"] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "Describe both."},
    ]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"temperature": 1.5}, "temperature"),
    ],
)
async def test_unsupported_options_are_rejected_before_the_call(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.complete(build_call(SONNET, {"messages": HI, **extra}))
    assert (info.value.status_code, info.value.param) == (400, param)
    assert anthropic_fake.requests == []


async def test_refusal_is_content_filter(anthropic_fake: AnthropicFake, provider: AnthropicProvider) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_refusal.json")))
    result = await provider.complete(build_call(SONNET, {"messages": HI}))
    assert result.choices[0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
async def test_stop_reason_mapping(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider, stop: str, finish: str
) -> None:
    body = load("anthropic_text.json")
    body["stop_reason"] = stop
    anthropic_fake.add(Reply(body=body))
    result = await provider.complete(build_call(SONNET, {"messages": HI}))
    assert result.choices[0]["finish_reason"] == finish


# --- streaming ----------------------------------------------------------------------------


async def test_stream_text(anthropic_fake: AnthropicFake, provider: AnthropicProvider) -> None:
    anthropic_fake.add(anthropic_sse(load("anthropic_stream_text.json")))
    chunks = await collect(provider, build_call(SONNET, {"messages": HI, "stream": True}))
    assert anthropic_fake.last.json["stream"] is True
    assert chunks[0].choices[0]["delta"] == {"role": "assistant", "content": ""}
    assert sum(1 for ch in chunks for c in ch.choices if "role" in c["delta"]) == 1
    assert joined(chunks, "content") == "Hello!"
    assert finishes(chunks) == ["stop"]
    assert [i for i, ch in enumerate(chunks) if ch.usage is not None] == [len(chunks) - 1]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (25, 15)


async def test_stream_thinking_and_tool_use(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    anthropic_fake.add(anthropic_sse(load("anthropic_stream_tool_use.json")))
    call = build_call(
        SONNET,
        {"messages": HI, "stream": True, "tools": TOOLS, "reasoning_effort": "low", "max_tokens": 4096},
    )
    chunks = await collect(provider, call)
    assert anthropic_fake.last.json["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert joined(chunks, "reasoning_content") == "I need the weather in San Francisco."
    assert joined(chunks, "content") == "Okay, let's check the weather."
    tool_deltas = [tc for ch in chunks for c in ch.choices for tc in c["delta"].get("tool_calls", [])]
    assert tool_deltas[0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(tc["index"] == 0 for tc in tool_deltas)
    assert "".join(tc["function"]["arguments"] for tc in tool_deltas) == '{"location": "San Francisco, CA"}'
    assert finishes(chunks) == ["tool_calls"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (472 + 256, 89, 256)


async def test_error_event_after_200(anthropic_fake: AnthropicFake, provider: AnthropicProvider) -> None:
    anthropic_fake.add(anthropic_sse(load("anthropic_stream_overloaded.json")))
    seen: list[Chunk] = []
    with pytest.raises(UpstreamStatusError, match="upstream anthropic failed with status 529") as info:
        async for chunk in provider.stream(build_call(SONNET, {"messages": HI, "stream": True})):
            seen.append(chunk)
    assert joined(seen, "content") == "Hel"
    err = info.value
    assert "Overloaded" in (err.upstream_message or "")  # for the server log, not the client
    assert (err.upstream_status, err.status_code, err.retryable) == (529, 503, True)


async def test_stream_ending_before_message_stop(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    anthropic_fake.add(anthropic_sse(load("anthropic_stream_text.json")[:5]))
    with pytest.raises(UpstreamConnectionError, match="message_stop"):
        await collect(provider, build_call(SONNET, {"messages": HI, "stream": True}))


# --- tools --------------------------------------------------------------------------------


async def test_tool_call_round_trip(anthropic_fake: AnthropicFake, provider: AnthropicProvider) -> None:
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
    result = await provider.complete(call)

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
    anthropic_fake: AnthropicFake, provider: AnthropicProvider, choice: str, expected: dict[str, Any]
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")))
    await provider.complete(build_call(SONNET, {"messages": HI, "tools": TOOLS, "tool_choice": choice}))
    assert anthropic_fake.last.json["tool_choice"] == expected


# --- thinking -----------------------------------------------------------------------------


async def test_thinking_blocks_and_cache_usage(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_thinking.json")))
    call = build_call(
        SONNET, {"messages": HI, "max_tokens": 16000, "thinking": {"type": "enabled", "budget_tokens": 10000}}
    )
    result = await provider.complete(call)
    assert anthropic_fake.last.json["thinking"] == {"type": "enabled", "budget_tokens": 10000}
    msg = result.choices[0]["message"]
    assert msg["content"] == "27 * 453 = 12,231"
    assert msg["reasoning_content"].startswith("Let me analyze this step by step.")
    assert "EmwKAhgB" not in str(result.choices)  # redacted thinking is dropped
    u = result.usage
    assert (u.prompt_tokens, u.completion_tokens, u.cached_tokens) == (40 + 2048 + 120, 310, 2048)


@pytest.mark.parametrize(
    ("effort", "max_tokens", "budget"),
    [
        ("minimal", 4096, 1024),
        ("low", 4096, 1024),
        ("medium", 20000, 8192),
        ("high", 30000, 24576),
        ("high", 5000, 4999),
        ("xhigh", 64000, 63999),
    ],
)
async def test_reasoning_effort_budgets(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider, effort: str, max_tokens: int, budget: int
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")))
    await provider.complete(
        build_call(SONNET, {"messages": HI, "reasoning_effort": effort, "max_tokens": max_tokens})
    )
    assert anthropic_fake.last.json["thinking"] == {"type": "enabled", "budget_tokens": budget}


async def test_reasoning_effort_none_sends_no_thinking(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")), Reply(body=load("anthropic_text.json")))
    await provider.complete(build_call(SONNET, {"messages": HI, "reasoning_effort": "none"}))
    assert "thinking" not in anthropic_fake.last.json
    await provider.complete(
        build_call(SONNET, {"messages": HI, "thinking": {"type": "disabled"}, "temperature": 0.1})
    )
    assert "thinking" not in anthropic_fake.last.json


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 2000},
            "thinking.budget_tokens",
            "max_tokens (2000)",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 4000}},
            "thinking.budget_tokens",
            "max_tokens (512)",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 500}, "max_tokens": 4000},
            "thinking.budget_tokens",
            "at least 1024",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 4000, "temperature": 0.5},
            "temperature",
            "must be 1",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 4000, "top_k": 3},
            "top_k",
            "thinking",
        ),
        (
            {"reasoning_effort": "high", "max_tokens": 4000, "tools": TOOLS, "tool_choice": "required"},
            "tool_choice",
            "thinking",
        ),
        ({"reasoning_effort": "low"}, "reasoning_effort", "max_tokens (512)"),
    ],
)
async def test_impossible_thinking_combinations(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider, extra: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.complete(build_call(SONNET, {"messages": HI, **extra}))
    assert info.value.status_code == 400
    assert info.value.param == param
    assert words in info.value.message
    assert anthropic_fake.requests == []


async def test_thinking_on_a_model_without_reasoning_is_rejected(provider: AnthropicProvider) -> None:
    spec = builtin_model(SONNET)
    spec.reasoning = None
    with pytest.raises(InvalidRequestError, match="does not support extended thinking"):
        await provider.complete(
            build_call(spec, {"messages": HI, "reasoning_effort": "high", "max_tokens": 9000})
        )


async def test_thinking_consumes_the_whole_budget(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_thinking_exhausted.json")))
    result = await provider.complete(
        build_call(SONNET, {"messages": HI, "max_tokens": 2048, "reasoning_effort": "low"})
    )
    [choice] = result.choices
    assert choice["message"]["content"] == ""
    assert choice["finish_reason"] == "length"
    assert choice["message"]["reasoning_content"].startswith("The user asks about mankind.")
    assert result.usage.completion_tokens == 2048


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "client_status", "retryable"),
    [
        # Anthropic-specific statuses; the common ones are in test_contract.py.
        (413, 400, False),
        (529, 503, True),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_status_errors(
    anthropic_fake: AnthropicFake,
    provider: AnthropicProvider,
    status: int,
    client_status: int,
    retryable: bool,
    stream: bool,
) -> None:
    anthropic_fake.add(anthropic_error(status))
    call = build_call(SONNET, {"messages": HI, "stream": stream})
    with pytest.raises(UpstreamStatusError) as info:
        if stream:
            await collect(provider, call)
        else:
            await provider.complete(call)
    err = info.value
    assert (err.upstream_status, err.status_code, err.retryable) == (status, client_status, retryable)
    # The client reads our message naming the provider and status; the upstream's wording is kept
    # (sanitised) for the log and for doors that pass it through.
    assert f"upstream anthropic answered HTTP {status}" in err.message
    assert load("anthropic_errors.json")[str(status)]["error"]["message"] in (err.upstream_message or "")


async def test_wrong_api_key(anthropic_fake: AnthropicFake) -> None:
    p = AnthropicProvider(
        "anthropic", provider_config("anthropic", anthropic_fake.base_url, api_key="bad"), ProviderContext()
    )
    try:
        with pytest.raises(UpstreamStatusError, match="credentials were refused") as info:
            await p.complete(build_call(SONNET, {"messages": HI}))
    finally:
        await p.aclose()
    assert "invalid x-api-key" in (info.value.upstream_message or "")
    assert (info.value.upstream_status, info.value.status_code, info.value.retryable) == (401, 502, False)


async def test_stream_without_message_delta_still_finishes(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    events = load("anthropic_stream_text.json")
    assert events[-2]["event"] == "message_delta"
    del events[-2]
    anthropic_fake.add(anthropic_sse(events))
    chunks = await collect(provider, build_call(SONNET, {"messages": HI, "stream": True}))
    assert finishes(chunks) == ["stop"]
    assert joined(chunks, "content") == "Hello!"


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
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=_output_message({"city": "Paris", "temp_c": 21})))
    rf = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}}
    result = await provider.complete(build_call(SONNET, {"messages": HI, "response_format": rf}))
    sent = anthropic_fake.last.json
    assert sent["tools"] == [{"name": "json_response", "description": ANY_STR, "input_schema": SCHEMA}]
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    msg = result.choices[0]["message"]
    assert json.loads(msg["content"]) == {"city": "Paris", "temp_c": 21} and "tool_calls" not in msg
    assert result.choices[0]["finish_reason"] == "stop"


async def test_structured_output_streams_as_content(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
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
    chunks = await collect(provider, call)
    assert anthropic_fake.last.json["tools"][0]["input_schema"] == {"type": "object"}
    assert json.loads(joined(chunks, "content")) == {"ok": True}
    assert finishes(chunks) == ["stop"]
    assert not [c for ch in chunks for c in ch.choices if c["delta"].get("tool_calls")]


async def test_structured_output_with_thinking_offers_the_tool(
    anthropic_fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=_output_message({"a": 1})))
    body = {
        "messages": HI,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
        "max_tokens": 4096,
    }
    result = await provider.complete(build_call(SONNET, body))
    sent = anthropic_fake.last.json
    assert "tool_choice" not in sent and "json_response" in sent["system"]
    assert json.loads(result.choices[0]["message"]["content"]) == {"a": 1}


class _AnyStr(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)

    __hash__ = str.__hash__


ANY_STR = _AnyStr()
