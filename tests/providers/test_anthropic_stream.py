"""The Anthropic adapter's streams: text, thinking and tool_use deltas, error events, early ends."""

from __future__ import annotations

import pytest

from modelgate.errors import (
    UpstreamConnectionError,
    UpstreamStatusError,
)
from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import Chunk
from tests.fakes import load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_sse
from tests.fakes.calls import build_call
from tests.providers.anthropic_kit import HI, SONNET, TOOLS, collect, finishes, joined

# --- streaming ----------------------------------------------------------------------------


async def test_stream_text(anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider) -> None:
    anthropic_fake.add(anthropic_sse(load("anthropic_stream_text.json")))
    chunks = await collect(anthropic_adapter, build_call(SONNET, {"messages": HI, "stream": True}))
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
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(anthropic_sse(load("anthropic_stream_tool_use.json")))
    call = build_call(
        SONNET,
        {"messages": HI, "stream": True, "tools": TOOLS, "reasoning_effort": "low", "max_tokens": 4096},
    )
    chunks = await collect(anthropic_adapter, call)
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


async def test_error_event_after_200(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(anthropic_sse(load("anthropic_stream_overloaded.json")))
    seen: list[Chunk] = []
    with pytest.raises(UpstreamStatusError, match="upstream anthropic failed with status 529") as info:
        async for chunk in anthropic_adapter.stream(build_call(SONNET, {"messages": HI, "stream": True})):
            seen.append(chunk)
    assert joined(seen, "content") == "Hel"
    err = info.value
    assert "Overloaded" in (err.upstream_message or "")  # for the server log, not the client
    assert (err.upstream_status, err.status_code, err.retryable) == (529, 503, True)


async def test_stream_ending_before_message_stop(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(anthropic_sse(load("anthropic_stream_text.json")[:5]))
    with pytest.raises(UpstreamConnectionError, match="message_stop"):
        await collect(anthropic_adapter, build_call(SONNET, {"messages": HI, "stream": True}))
