"""The Gemini adapter's streams."""

from __future__ import annotations

from modelgate.providers.gemini import GeminiProvider
from tests.fakes import load
from tests.fakes.calls import build_call
from tests.fakes.gemini_server import GeminiFake, gemini_sse, json_array
from tests.providers.gemini_kit import FLASH, HI, PRO, collect, finish_of, text_of

# --- streaming ----------------------------------------------------------------------------


async def test_stream_text(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
    gemini_fake.add(gemini_sse(load("gemini_stream_text.json")))
    chunks = await collect(gemini_adapter, build_call(PRO, {"messages": HI, "stream": True}))

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
    gemini_fake: GeminiFake, gemini_adapter: GeminiProvider
) -> None:
    gemini_fake.add(json_array(load("gemini_stream_text.json")))
    chunks = await collect(gemini_adapter, build_call(PRO, {"messages": HI, "stream": True}))
    assert text_of(chunks) == "That's one of the biggest questions anyone can ask."
    assert finish_of(chunks) == ["stop"]


async def test_stream_two_candidates(gemini_fake: GeminiFake, gemini_adapter: GeminiProvider) -> None:
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
    chunks = await collect(gemini_adapter, build_call(FLASH, {"messages": HI, "stream": True, "n": 2}))
    assert (text_of(chunks, index=0), text_of(chunks, index=1)) == ("Aa", "Bb")
    assert (finish_of(chunks, 0), finish_of(chunks, 1)) == (["stop"], ["length"])
    roles = [c["index"] for ch in chunks for c in ch.choices if c["delta"].get("role")]
    assert roles == [0, 1]
