"""The Gemini adapter against a protocol-level fake of generativelanguage v1beta."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelgate.errors import (
    InvalidRequestError,
    UpstreamConnectionError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from modelgate.providers.base import Chunk, Provider, ProviderContext
from modelgate.providers.gemini import GeminiProvider
from modelgate.providers.registry import ProviderTypeRegistry
from tests.fakes import SSE, Reply, SSEReply, load
from tests.fakes.calls import build_call, provider_config
from tests.fakes.gemini_server import GeminiFake, gemini_error, gemini_sse, json_array

PRO = "google/gemini-2.5-pro"
FLASH = "google/gemini-2.5-flash"
LITE = "google/gemini-2.5-flash-lite"
HI = [{"role": "user", "content": "Hi! What do you think about mankind?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


@pytest.fixture
async def provider(gemini_fake: GeminiFake) -> AsyncIterator[GeminiProvider]:
    p = GeminiProvider(
        "google",
        provider_config("gemini", gemini_fake.base_url, api_key="test-gemini-key"),
        ProviderContext(user_agent="modelgate-test"),
    )
    yield p
    await p.aclose()


async def collect(provider: GeminiProvider, call: Any) -> list[Chunk]:
    return [c async for c in provider.stream(call)]


def text_of(chunks: list[Chunk], key: str = "content", index: int = 0) -> str:
    return "".join(c["delta"].get(key) or "" for ch in chunks for c in ch.choices if c["index"] == index)


def finish_of(chunks: list[Chunk], index: int = 0) -> list[str]:
    return [
        c["finish_reason"] for ch in chunks for c in ch.choices if c["finish_reason"] and c["index"] == index
    ]


# --- the adapter as a registered provider ------------------------------------------------


async def test_registered_as_type_gemini_and_satisfies_protocol(gemini_fake: GeminiFake) -> None:
    factory = ProviderTypeRegistry.with_defaults().factory("gemini")
    p = factory("google", provider_config("gemini", gemini_fake.base_url, api_key="k"), ProviderContext())
    try:
        assert isinstance(p, Provider)
        assert (p.supports_tools, p.supports_vision, p.supports_json_schema, p.supports_streaming) == (
            True,
            True,
            True,
            True,
        )
    finally:
        await p.aclose()


# --- plain text ---------------------------------------------------------------------------


async def test_text_completion_request_and_response(
    gemini_fake: GeminiFake, provider: GeminiProvider
) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    call = build_call(
        PRO,
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
                *HI,
            ],
            "max_tokens": 15000,
            "temperature": 0.3,
            "top_p": 0.9,
        },
    )
    result = await provider.complete(call)

    sent = gemini_fake.last
    assert gemini_fake.model_and_method() == ("gemini-2.5-pro", "generateContent")
    assert sent.headers["x-goog-api-key"] == "test-gemini-key"
    assert sent.headers["User-Agent"] == "modelgate-test"
    assert "Authorization" not in sent.headers
    body = sent.json
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Answer in English."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": HI[0]["content"]}]}]
    assert body["generationConfig"] == {
        "maxOutputTokens": 15000,
        "temperature": 0.3,
        "topP": 0.9,
        "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True},
    }

    assert result.upstream_id == "pajSaNyMOdeEm9IPkequ-AU"
    [choice] = result.choices
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    msg = choice["message"]
    assert msg["role"] == "assistant"
    assert msg["content"].startswith("That's one of the biggest questions")
    assert msg["refusal"] is None
    assert "tool_calls" not in msg
    assert msg["reasoning_content"].startswith("**Contemplating humanity**")
    assert "Contemplating" not in msg["content"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (24, 29 + 1339)
    assert (result.usage.reasoning_tokens, result.usage.cached_tokens) == (1339, 0)
    assert result.usage.total_tokens == 24 + 29 + 1339


async def test_generation_config_mapping(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    call = build_call(
        FLASH,
        {
            "messages": HI,
            "max_completion_tokens": 2048,
            "top_k": 40,
            "n": 2,
            "seed": 7,
            "stop": ["END", "STOP"],
            "presence_penalty": 0.5,
            "frequency_penalty": -0.25,
            "logprobs": True,
            "top_logprobs": 3,
        },
    )
    await provider.complete(call)
    assert gemini_fake.model_and_method()[0] == "gemini-2.5-flash"
    gen = gemini_fake.last.json["generationConfig"]
    assert gen == {
        "maxOutputTokens": 2048,
        "topK": 40,
        "candidateCount": 2,
        "seed": 7,
        "stopSequences": ["END", "STOP"],
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.25,
        "responseLogprobs": True,
        "logprobs": 3,
        "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True},
    }


async def test_logprobs_result_is_converted(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    body = load("gemini_text.json")
    body["candidates"][0]["logprobsResult"] = {
        "topCandidates": [
            {
                "candidates": [
                    {"token": "Hi", "logProbability": -0.1},
                    {"token": "Hey", "logProbability": -2.5},
                ]
            }
        ],
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
    }
    gemini_fake.add(Reply(body=body))
    result = await provider.complete(build_call(PRO, {"messages": HI, "logprobs": True, "top_logprobs": 2}))
    lp = result.choices[0]["logprobs"]
    assert lp["content"][0]["token"] == "Hi"
    assert lp["content"][0]["logprob"] == -0.1
    assert [t["token"] for t in lp["content"][0]["top_logprobs"]] == ["Hi", "Hey"]


# --- thinking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "extra", "budget"),
    [
        (PRO, {}, -1),
        (PRO, {"reasoning_effort": "none"}, 128),
        (PRO, {"reasoning_effort": "minimal"}, 128),
        (PRO, {"reasoning_effort": "low"}, 1024),
        (PRO, {"reasoning_effort": "medium"}, 8192),
        (PRO, {"reasoning_effort": "high"}, 24576),
        (PRO, {"reasoning_effort": "xhigh"}, 32768),
        (PRO, {"thinking": {"type": "enabled", "budget_tokens": 50}}, 128),
        (PRO, {"thinking": {"type": "enabled", "budget_tokens": 100000}}, 32768),
        (PRO, {"thinking": {"type": "enabled", "budget_tokens": 0}}, 128),
        (PRO, {"thinking": {"type": "enabled", "budget_tokens": 4000}}, 4000),
        (PRO, {"thinking": {"type": "disabled"}}, 128),
        (PRO, {"thinking": {"type": "adaptive"}}, -1),
        (FLASH, {}, -1),
        (FLASH, {"reasoning_effort": "none"}, 0),
        (FLASH, {"reasoning_effort": "minimal"}, 512),
        (FLASH, {"reasoning_effort": "xhigh"}, 24576),
        (FLASH, {"thinking": {"type": "disabled"}}, 0),
        (LITE, {}, 0),
        (LITE, {"reasoning_effort": "low"}, 1024),
        (LITE, {"thinking": {"type": "enabled", "budget_tokens": 10}}, 512),
    ],
)
async def test_thinking_budget_mapping(
    gemini_fake: GeminiFake, provider: GeminiProvider, model: str, extra: dict[str, Any], budget: int
) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    await provider.complete(build_call(model, {"messages": HI, **extra}))
    assert gemini_fake.last.json["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": budget,
        "includeThoughts": True,
    }


async def test_model_without_reasoning_gets_no_thinking_config(
    gemini_fake: GeminiFake, provider: GeminiProvider
) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    from tests.fakes.calls import builtin_model

    spec = builtin_model(PRO)
    spec.reasoning = None
    await provider.complete(build_call(spec, {"messages": HI, "reasoning_effort": "high"}))
    assert "thinkingConfig" not in gemini_fake.last.json["generationConfig"]


async def test_thinking_consumes_the_whole_512_default(
    gemini_fake: GeminiFake, provider: GeminiProvider
) -> None:
    """The seed document's warning: default cap 512, all of it spent thinking -> "" + length."""
    gemini_fake.add(Reply(body=load("gemini_thinking_exhausted.json")))
    result = await provider.complete(build_call(PRO, {"messages": HI}))
    assert gemini_fake.last.json["generationConfig"]["maxOutputTokens"] == 512
    [choice] = result.choices
    assert choice["message"]["content"] == ""
    assert choice["message"]["content"] is not None
    assert choice["finish_reason"] == "length"
    assert choice["message"]["reasoning_content"].startswith("**Mapping")
    assert result.usage.reasoning_tokens == 509
    assert result.usage.completion_tokens == 509
    assert result.usage.prompt_tokens == 11


async def test_stream_thinking_consumes_the_whole_budget(
    gemini_fake: GeminiFake, provider: GeminiProvider
) -> None:
    gemini_fake.add(gemini_sse(load("gemini_stream_thinking_exhausted.json")))
    chunks = await collect(provider, build_call(PRO, {"messages": HI, "stream": True}))
    assert text_of(chunks) == ""
    assert chunks[0].choices[0]["delta"]["content"] == ""
    assert text_of(chunks, "reasoning_content") == "**Mapping the question's scope**"
    assert finish_of(chunks) == ["length"]
    usage = chunks[-1].usage
    assert usage is not None and usage.reasoning_tokens == 509 and usage.completion_tokens == 509


# --- streaming ----------------------------------------------------------------------------


async def test_stream_text(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(gemini_sse(load("gemini_stream_text.json")))
    chunks = await collect(provider, build_call(PRO, {"messages": HI, "stream": True}))

    assert gemini_fake.model_and_method() == ("gemini-2.5-pro", "streamGenerateContent")
    assert gemini_fake.last.query == {"alt": "sse"}
    first = chunks[0].choices[0]
    assert first["delta"]["role"] == "assistant"
    assert first["delta"]["reasoning_content"] == "**Contemplating humanity**\n\n"
    assert sum(1 for ch in chunks for c in ch.choices if "role" in c["delta"]) == 1
    assert text_of(chunks) == "That's one of the biggest questions anyone can ask."
    assert finish_of(chunks) == ["stop"]
    assert all(c["logprobs"] is None for ch in chunks for c in ch.choices)
    # usage once, on the final chunk, from the last event (cumulative, not summed)
    assert [i for i, ch in enumerate(chunks) if ch.usage is not None] == [len(chunks) - 1]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.reasoning_tokens) == (
        24,
        11 + 1339,
        1339,
    )


async def test_stream_accepts_plain_json_array_body(
    gemini_fake: GeminiFake, provider: GeminiProvider
) -> None:
    gemini_fake.add(json_array(load("gemini_stream_text.json")))
    chunks = await collect(provider, build_call(PRO, {"messages": HI, "stream": True}))
    assert text_of(chunks) == "That's one of the biggest questions anyone can ask."
    assert finish_of(chunks) == ["stop"]


async def test_stream_two_candidates(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    events = [
        {"candidates": [{"content": {"parts": [{"text": "A"}], "role": "model"}, "index": 0}]},
        {"candidates": [{"content": {"parts": [{"text": "B"}], "role": "model"}, "index": 1}]},
        {
            "candidates": [
                {"content": {"parts": [{"text": "a"}], "role": "model"}, "finishReason": "STOP", "index": 0},
                {
                    "content": {"parts": [{"text": "b"}], "role": "model"},
                    "finishReason": "MAX_TOKENS",
                    "index": 1,
                },
            ],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7},
        },
    ]
    gemini_fake.add(gemini_sse(events))
    chunks = await collect(provider, build_call(FLASH, {"messages": HI, "stream": True, "n": 2}))
    assert (text_of(chunks, index=0), text_of(chunks, index=1)) == ("Aa", "Bb")
    assert (finish_of(chunks, 0), finish_of(chunks, 1)) == (["stop"], ["length"])
    roles = [c["index"] for ch in chunks for c in ch.choices if c["delta"].get("role")]
    assert roles == [0, 1]


# --- tools --------------------------------------------------------------------------------


async def test_tool_call_round_trip(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
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
    result = await provider.complete(call)

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
    gemini_fake: GeminiFake, provider: GeminiProvider, choice: str, expected: dict[str, Any]
) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    await provider.complete(build_call(PRO, {"messages": HI, "tools": TOOLS, "tool_choice": choice}))
    assert gemini_fake.last.json["toolConfig"] == {"functionCallingConfig": expected}


async def test_tool_result_for_unknown_call_id_is_rejected(provider: GeminiProvider) -> None:
    call = build_call(
        PRO, {"messages": [*HI, {"role": "tool", "tool_call_id": "call_missing", "content": "x"}]}
    )
    with pytest.raises(InvalidRequestError, match="call_missing"):
        await provider.complete(call)


async def test_stream_function_call(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(gemini_sse(load("gemini_stream_function_call.json")))
    chunks = await collect(provider, build_call(PRO, {"messages": HI, "tools": TOOLS, "stream": True}))
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


async def test_json_schema(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_json_schema.json")))
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
        "required": ["name", "born"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    result = await provider.complete(build_call(PRO, {"messages": HI, "response_format": fmt}))
    gen = gemini_fake.last.json["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert gen["responseJsonSchema"] == schema
    assert result.choices[0]["message"]["content"] == '{"name": "Ada Lovelace", "born": 1815}'
    # cached tokens reported, tool-use prompt tokens added to the prompt, nothing counted twice
    u = result.usage
    assert (u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens) == (45, 215, 201, 32)


async def test_json_object(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_json_schema.json")))
    await provider.complete(build_call(PRO, {"messages": HI, "response_format": {"type": "json_object"}}))
    gen = gemini_fake.last.json["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in gen


async def test_image_parts(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?size=2"}},
    ]
    await provider.complete(build_call(PRO, {"messages": [{"role": "user", "content": content}]}))
    assert gemini_fake.last.json["contents"][0]["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg?size=2"}},
    ]


async def test_file_parts_are_inline_data(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    content = [{"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x"}}]
    await provider.complete(build_call(PRO, {"messages": [{"role": "user", "content": content}]}))
    assert gemini_fake.last.json["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}}
    ]
    bad = [{"type": "file", "file": {"file_data": "JVBERi0x"}}]
    with pytest.raises(InvalidRequestError, match="base64 data: URL"):
        await provider.complete(build_call(PRO, {"messages": [{"role": "user", "content": bad}]}))


async def test_image_url_without_known_type_is_rejected(
    gemini_fake: GeminiFake, provider: GeminiProvider
) -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/render?id=3"}}]
    with pytest.raises(InvalidRequestError, match="data: URL") as info:
        await provider.complete(build_call(PRO, {"messages": [{"role": "user", "content": content}]}))
    assert info.value.status_code == 400
    assert info.value.param == "messages[0].content[0].image_url.url"
    assert gemini_fake.requests == []


# --- blocks -------------------------------------------------------------------------------


async def test_safety_block(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_safety.json")))
    result = await provider.complete(build_call(PRO, {"messages": HI}))
    [choice] = result.choices
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None
    assert result.usage.reasoning_tokens == 87


@pytest.mark.parametrize(
    "reason", ["RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "OTHER", "IMAGE_SAFETY"]
)
async def test_other_filter_reasons(gemini_fake: GeminiFake, provider: GeminiProvider, reason: str) -> None:
    body = load("gemini_text.json")
    body["candidates"][0]["finishReason"] = reason
    gemini_fake.add(Reply(body=body))
    result = await provider.complete(build_call(PRO, {"messages": HI}))
    assert result.choices[0]["finish_reason"] == "content_filter"


async def test_prompt_block(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_prompt_blocked.json")))
    result = await provider.complete(build_call(PRO, {"messages": HI}))
    assert result.choices == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": None},
            "finish_reason": "content_filter",
            "logprobs": None,
        }
    ]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (8, 0)


async def test_stream_prompt_block(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(gemini_sse([load("gemini_prompt_blocked.json")]))
    chunks = await collect(provider, build_call(PRO, {"messages": HI, "stream": True}))
    assert finish_of(chunks) == ["content_filter"]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 8


# --- errors -------------------------------------------------------------------------------


async def test_wrong_api_key_is_the_operators_fault_not_the_clients(gemini_fake: GeminiFake) -> None:
    """Gemini answers a bad key with 400 API_KEY_INVALID; the client must not be told it erred."""
    p = GeminiProvider(
        "google", provider_config("gemini", gemini_fake.base_url, api_key="nope"), ProviderContext()
    )
    try:
        with pytest.raises(UpstreamStatusError, match="credentials were refused") as info:
            await p.complete(build_call(PRO, {"messages": HI}))
    finally:
        await p.aclose()
    assert "API key not valid" in (info.value.upstream_message or "")
    assert info.value.upstream_status == 401
    assert info.value.status_code == 502 and not info.value.retryable
    assert gemini_fake.last.headers["x-goog-api-key"] == "nope"


async def test_quota_retry_delay_is_read_from_retry_info(
    gemini_fake: GeminiFake, provider: GeminiProvider
) -> None:
    gemini_fake.add(gemini_error(429))
    with pytest.raises(UpstreamStatusError) as info:
        await provider.complete(build_call(PRO, {"messages": HI}))
    assert info.value.retry_after == 17.0 and info.value.status_code == 429


async def test_error_event_mid_stream(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    events = load("gemini_stream_text.json")[:2]
    gemini_fake.add(gemini_sse([*events, load("gemini_errors.json")["503"]]))
    seen: list[Chunk] = []
    with pytest.raises(UpstreamStatusError) as info:
        async for chunk in provider.stream(build_call(PRO, {"messages": HI, "stream": True})):
            seen.append(chunk)
    assert text_of(seen) == "That's one of the biggest"
    assert (info.value.upstream_status, info.value.status_code, info.value.retryable) == (503, 503, True)


async def test_raw_json_error_mid_stream(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    """After a 200 the service may write a bare (non-SSE) JSON error object, over several lines."""
    tail = (
        b'{\n  "error": {\n    "code": 429,\n    "message": "Resource has been exhausted",\n'
        b'    "status": "RESOURCE_EXHAUSTED"\n  }\n}\n'
    )
    gemini_fake.add(gemini_sse(load("gemini_stream_text.json")[:2], tail=tail))
    with pytest.raises(UpstreamStatusError, match="rate limiting") as info:
        await collect(provider, build_call(PRO, {"messages": HI, "stream": True}))
    assert info.value.upstream_message == "Resource has been exhausted"
    assert (info.value.upstream_status, info.value.status_code, info.value.retryable) == (429, 429, True)


async def test_json_array_error_body_with_status_only(
    gemini_fake: GeminiFake, provider: GeminiProvider
) -> None:
    body = [{"error": {"message": "Backend unavailable", "status": "UNAVAILABLE"}}]
    gemini_fake.add(Reply(body=body))
    with pytest.raises(UpstreamStatusError, match="overloaded or unavailable") as info:
        await collect(provider, build_call(PRO, {"messages": HI, "stream": True}))
    assert info.value.upstream_message == "Backend unavailable"
    assert info.value.upstream_status == 503


async def test_stream_ending_without_finish_reason(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    gemini_fake.add(gemini_sse(load("gemini_stream_text.json")[:2]))
    with pytest.raises(UpstreamConnectionError, match="before a finish reason"):
        await collect(provider, build_call(PRO, {"messages": HI, "stream": True}))


async def test_stalled_stream_times_out(gemini_fake: GeminiFake) -> None:
    config = provider_config("gemini", gemini_fake.base_url, api_key="test-gemini-key", first_byte=0.3)
    p = GeminiProvider("google", config, ProviderContext())
    events = load("gemini_stream_text.json")
    gemini_fake.add(SSEReply([SSE(events[0]), SSE(events[1], delay=1.5)]))
    try:
        with pytest.raises(UpstreamTimeoutError, match="stalled"):
            await collect(p, build_call(PRO, {"messages": HI, "stream": True}))
    finally:
        await p.aclose()


async def test_error_body_as_json_array(gemini_fake: GeminiFake, provider: GeminiProvider) -> None:
    """The streaming endpoint may wrap its error object in an array."""
    gemini_fake.add(gemini_error(429, as_array=True))
    with pytest.raises(UpstreamStatusError, match="rate limiting") as info:
        await collect(provider, build_call(PRO, {"messages": HI, "stream": True}))
    assert "exceeded your current quota" in (info.value.upstream_message or "")
    assert (info.value.upstream_status, info.value.status_code, info.value.retryable) == (429, 429, True)
