"""The Anthropic adapter against a protocol-level fake of the Messages API: registration, whole
answers, errors."""

from __future__ import annotations

import gc
import inspect
from typing import Any

import pytest

from modelgate.errors import (
    InvalidRequestError,
    UpstreamStatusError,
)
from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import Provider, ProviderContext
from modelgate.providers.registry import ProviderTypeRegistry
from tests.fakes import Reply, load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_error, anthropic_sse
from tests.fakes.calls import build_call, provider_config
from tests.providers.anthropic_kit import HI, SONNET, collect, finishes, joined


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
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
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
    result = await anthropic_adapter.complete(call)

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


async def test_max_tokens_is_always_sent(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")))
    await anthropic_adapter.complete(build_call(SONNET, {"messages": HI, "max_completion_tokens": 3000}))
    assert anthropic_fake.last.json["max_tokens"] == 3000


async def test_images(anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")))
    content = [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "Describe both."},
    ]
    await anthropic_adapter.complete(build_call(SONNET, {"messages": [{"role": "user", "content": content}]}))
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
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await anthropic_adapter.complete(build_call(SONNET, {"messages": HI, **extra}))
    assert (info.value.status_code, info.value.param) == (400, param)
    assert anthropic_fake.requests == []


async def test_refusal_is_content_filter(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_refusal.json")))
    result = await anthropic_adapter.complete(build_call(SONNET, {"messages": HI}))
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
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider, stop: str, finish: str
) -> None:
    body = load("anthropic_text.json")
    body["stop_reason"] = stop
    anthropic_fake.add(Reply(body=body))
    result = await anthropic_adapter.complete(build_call(SONNET, {"messages": HI}))
    assert result.choices[0]["finish_reason"] == finish


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
    anthropic_adapter: AnthropicProvider,
    status: int,
    client_status: int,
    retryable: bool,
    stream: bool,
) -> None:
    anthropic_fake.add(anthropic_error(status))
    call = build_call(SONNET, {"messages": HI, "stream": stream})
    with pytest.raises(UpstreamStatusError) as info:
        if stream:
            await collect(anthropic_adapter, call)
        else:
            await anthropic_adapter.complete(call)
    err = info.value
    assert (err.upstream_status, err.status_code, err.retryable) == (status, client_status, retryable)
    # The client reads our message naming the anthropic_adapter and status; the upstream's wording is kept
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
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    events = load("anthropic_stream_text.json")
    assert events[-2]["event"] == "message_delta"
    del events[-2]
    anthropic_fake.add(anthropic_sse(events))
    chunks = await collect(anthropic_adapter, build_call(SONNET, {"messages": HI, "stream": True}))
    assert finishes(chunks) == ["stop"]
    assert joined(chunks, "content") == "Hello!"


async def test_a_passed_through_stream_does_not_keep_the_request_body(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    """Once sent, a Messages body (an agent's: hundreds of KB) is not kept by the adapter or its HTTP
    layer while the answer streams (minutes; hundreds of streams in flight)."""
    anthropic_fake.add(anthropic_sse(load("anthropic_stream_text.json"), event_delay=0.05))
    body = b'{"model":"claude-sonnet-4-5","max_tokens":50,"stream":true,"messages":[{"role":"user",'
    body += b'"content":"' + b"x" * 500_000 + b'"}]}'
    events = anthropic_adapter.passthrough_stream(  # type: ignore[attr-defined]
        "anthropic-messages", body, {"anthropic-version": "2023-06-01"}
    )
    await anext(events)
    await anext(events)
    gc.collect()
    this = test_a_passed_through_stream_does_not_keep_the_request_body.__name__
    holders = [
        r.__qualname__
        for r in gc.get_referrers(body)
        if (inspect.isasyncgen(r) or inspect.iscoroutine(r)) and r.__name__ != this
    ]
    assert holders == []
    await events.aclose()
    assert anthropic_fake.last.body == body
