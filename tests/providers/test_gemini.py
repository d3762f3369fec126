"""The Gemini adapter against a protocol-level fake of generativelanguage v1beta: registration,
whole answers, safety blocks, errors."""

from __future__ import annotations

import pytest

from modelgate.errors import (
    UpstreamConnectionError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from modelgate.providers.base import Chunk, Provider, ProviderContext
from modelgate.providers.gemini import GeminiProvider
from modelgate.providers.registry import ProviderTypeRegistry
from tests.fakes import SSE, Reply, SSEReply, load
from tests.fakes.calls import build_call, provider_config
from tests.fakes.gemini_server import GeminiFake, gemini_error, gemini_sse
from tests.providers.gemini_kit import FLASH, HI, PRO, collect, finish_of, text_of

# --- the adapter as a registered gemini_adapter ------------------------------------------------


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
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider
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
    result = await gemini_adapter.complete(call)

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


async def test_generation_config_mapping(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
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
    await gemini_adapter.complete(call)
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


async def test_logprobs_result_is_converted(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
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
    result = await gemini_adapter.complete(
        build_call(PRO, {"messages": HI, "logprobs": True, "top_logprobs": 2})
    )
    lp = result.choices[0]["logprobs"]
    assert lp["content"][0]["token"] == "Hi"
    assert lp["content"][0]["logprob"] == -0.1
    assert [t["token"] for t in lp["content"][0]["top_logprobs"]] == ["Hi", "Hey"]


# --- blocks -------------------------------------------------------------------------------


async def test_safety_block(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_safety.json")))
    result = await gemini_adapter.complete(build_call(PRO, {"messages": HI}))
    [choice] = result.choices
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None
    assert result.usage.reasoning_tokens == 87


@pytest.mark.parametrize(
    "reason", ["RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "OTHER", "IMAGE_SAFETY"]
)
async def test_other_filter_reasons(
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider, reason: str
) -> None:
    body = load("gemini_text.json")
    body["candidates"][0]["finishReason"] = reason
    gemini_fake.add(Reply(body=body))
    result = await gemini_adapter.complete(build_call(PRO, {"messages": HI}))
    assert result.choices[0]["finish_reason"] == "content_filter"


async def test_prompt_block(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(Reply(body=load("gemini_prompt_blocked.json")))
    result = await gemini_adapter.complete(build_call(PRO, {"messages": HI}))
    assert result.choices == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None, "refusal": None},
            "finish_reason": "content_filter",
            "logprobs": None,
        }
    ]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (8, 0)


async def test_stream_prompt_block(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(gemini_sse([load("gemini_prompt_blocked.json")]))
    chunks = await collect(gemini_adapter, build_call(PRO, {"messages": HI, "stream": True}))
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
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider
) -> None:
    gemini_fake.add(gemini_error(429))
    with pytest.raises(UpstreamStatusError) as info:
        await gemini_adapter.complete(build_call(PRO, {"messages": HI}))
    assert info.value.retry_after == 17.0 and info.value.status_code == 429


async def test_error_event_mid_stream(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    events = load("gemini_stream_text.json")[:2]
    gemini_fake.add(gemini_sse([*events, load("gemini_errors.json")["503"]]))
    seen: list[Chunk] = []
    with pytest.raises(UpstreamStatusError) as info:
        async for chunk in gemini_adapter.stream(build_call(PRO, {"messages": HI, "stream": True})):
            seen.append(chunk)
    assert text_of(seen) == "That's one of the biggest"
    assert (info.value.upstream_status, info.value.status_code, info.value.retryable) == (503, 503, True)


async def test_raw_json_error_mid_stream(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    """After a 200 the service may write a bare (non-SSE) JSON error object, over several lines."""
    tail = (
        b'{\n  "error": {\n    "code": 429,\n    "message": "Resource has been exhausted",\n'
        b'    "status": "RESOURCE_EXHAUSTED"\n  }\n}\n'
    )
    gemini_fake.add(gemini_sse(load("gemini_stream_text.json")[:2], tail=tail))
    with pytest.raises(UpstreamStatusError, match="rate limiting") as info:
        await collect(gemini_adapter, build_call(PRO, {"messages": HI, "stream": True}))
    assert info.value.upstream_message == "Resource has been exhausted"
    assert (info.value.upstream_status, info.value.status_code, info.value.retryable) == (429, 429, True)


async def test_json_array_error_body_with_status_only(
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider
) -> None:
    body = [{"error": {"message": "Backend unavailable", "status": "UNAVAILABLE"}}]
    gemini_fake.add(Reply(body=body))
    with pytest.raises(UpstreamStatusError, match="overloaded or unavailable") as info:
        await collect(gemini_adapter, build_call(PRO, {"messages": HI, "stream": True}))
    assert info.value.upstream_message == "Backend unavailable"
    assert info.value.upstream_status == 503


async def test_stream_ending_without_finish_reason(
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider
) -> None:
    gemini_fake.add(gemini_sse(load("gemini_stream_text.json")[:2]))
    with pytest.raises(UpstreamConnectionError, match="before a finish reason"):
        await collect(gemini_adapter, build_call(PRO, {"messages": HI, "stream": True}))


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


async def test_error_body_as_json_array(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    """The streaming endpoint may wrap its error object in an array."""
    gemini_fake.add(gemini_error(429, as_array=True))
    with pytest.raises(UpstreamStatusError, match="rate limiting") as info:
        await collect(gemini_adapter, build_call(PRO, {"messages": HI, "stream": True}))
    assert "exceeded your current quota" in (info.value.upstream_message or "")
    assert (info.value.upstream_status, info.value.status_code, info.value.retryable) == (429, 429, True)
