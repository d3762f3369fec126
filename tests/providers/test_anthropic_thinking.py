"""The Anthropic adapter's extended thinking: budgets from reasoning_effort, impossible combinations."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate.errors import (
    InvalidRequestError,
)
from modelgate.providers.anthropic import AnthropicProvider
from tests.fakes import Reply, load
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.calls import build_call, builtin_model
from tests.providers.anthropic_kit import HI, SONNET, TOOLS

# --- thinking -----------------------------------------------------------------------------


async def test_thinking_blocks_and_cache_usage(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_thinking.json")))
    call = build_call(
        SONNET, {"messages": HI, "max_tokens": 16000, "thinking": {"type": "enabled", "budget_tokens": 10000}}
    )
    result = await anthropic_adapter.complete(call)
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
    anthropic_fake: AnthropicFake,
    anthropic_adapter: AnthropicProvider,
    effort: str,
    max_tokens: int,
    budget: int,
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")))
    await anthropic_adapter.complete(
        build_call(SONNET, {"messages": HI, "reasoning_effort": effort, "max_tokens": max_tokens})
    )
    assert anthropic_fake.last.json["thinking"] == {"type": "enabled", "budget_tokens": budget}


async def test_reasoning_effort_none_sends_no_thinking(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_text.json")), Reply(body=load("anthropic_text.json")))
    await anthropic_adapter.complete(build_call(SONNET, {"messages": HI, "reasoning_effort": "none"}))
    assert "thinking" not in anthropic_fake.last.json
    await anthropic_adapter.complete(
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
    anthropic_fake: AnthropicFake,
    anthropic_adapter: AnthropicProvider,
    extra: dict[str, Any],
    param: str,
    words: str,
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await anthropic_adapter.complete(build_call(SONNET, {"messages": HI, **extra}))
    assert info.value.status_code == 400
    assert info.value.param == param
    assert words in info.value.message
    assert anthropic_fake.requests == []


async def test_thinking_on_a_model_without_reasoning_is_rejected(
    anthropic_adapter: AnthropicProvider,
) -> None:
    spec = builtin_model(SONNET)
    spec.reasoning = None
    with pytest.raises(InvalidRequestError, match="does not support extended thinking"):
        await anthropic_adapter.complete(
            build_call(spec, {"messages": HI, "reasoning_effort": "high", "max_tokens": 9000})
        )


async def test_thinking_consumes_the_whole_budget(
    anthropic_fake: AnthropicFake, anthropic_adapter: AnthropicProvider
) -> None:
    anthropic_fake.add(Reply(body=load("anthropic_thinking_exhausted.json")))
    result = await anthropic_adapter.complete(
        build_call(SONNET, {"messages": HI, "max_tokens": 2048, "reasoning_effort": "low"})
    )
    [choice] = result.choices
    assert choice["message"]["content"] == ""
    assert choice["finish_reason"] == "length"
    assert choice["message"]["reasoning_content"].startswith("The user asks about mankind.")
    assert result.usage.completion_tokens == 2048
