"""The Gemini adapter's thinking budgets."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate.providers.gemini import GeminiProvider
from tests.fakes import Reply, load
from tests.fakes.calls import build_call
from tests.fakes.gemini_server import GeminiFake, gemini_sse
from tests.providers.gemini_kit import FLASH, HI, LITE, PRO, collect, finish_of, text_of

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
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider, model: str, extra: dict[str, Any], budget: int
) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    await gemini_adapter.complete(build_call(model, {"messages": HI, **extra}))
    assert gemini_fake.last.json["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": budget,
        "includeThoughts": True,
    }


async def test_model_without_reasoning_gets_no_thinking_config(
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider
) -> None:
    gemini_fake.add(Reply(body=load("gemini_text.json")))
    from tests.fakes.calls import builtin_model

    spec = builtin_model(PRO)
    spec.reasoning = None
    await gemini_adapter.complete(build_call(spec, {"messages": HI, "reasoning_effort": "high"}))
    assert "thinkingConfig" not in gemini_fake.last.json["generationConfig"]


async def test_thinking_consumes_the_whole_512_default(
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider
) -> None:
    """The seed document's warning: default cap 512, all of it spent thinking -> "" + length."""
    gemini_fake.add(Reply(body=load("gemini_thinking_exhausted.json")))
    result = await gemini_adapter.complete(build_call(PRO, {"messages": HI}))
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
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider
) -> None:
    gemini_fake.add(gemini_sse(load("gemini_stream_thinking_exhausted.json")))
    chunks = await collect(gemini_adapter, build_call(PRO, {"messages": HI, "stream": True}))
    assert text_of(chunks) == ""
    assert chunks[0].choices[0]["delta"]["content"] == ""
    assert text_of(chunks, "reasoning_content") == "**Mapping the question's scope**"
    assert finish_of(chunks) == ["length"]
    usage = chunks[-1].usage
    assert usage is not None and usage.reasoning_tokens == 509 and usage.completion_tokens == 509
