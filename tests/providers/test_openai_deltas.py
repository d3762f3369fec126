"""Streamed choices from an OpenAI-compatible upstream: the common chunk passes as it came, anything
else is normalised (index, finish reason, reasoning field)."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate.providers.openai_compat import _normalize_delta


def test_the_common_chunk_is_returned_as_it_came() -> None:
    raw = {"index": 0, "delta": {"content": "hi"}, "finish_reason": None}
    assert _normalize_delta(raw, 0) is raw
    done = {"index": 1, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert _normalize_delta(done, 0) is done


# Choices that need normalising, and what they become (at position 3).
CASES: list[tuple[Any, dict[str, Any]]] = [
    ({"delta": {"content": "x"}}, {"delta": {"content": "x"}, "index": 3, "finish_reason": None}),
    (
        {"index": True, "delta": {}, "finish_reason": None},
        {"index": 3, "delta": {}, "finish_reason": None},
    ),
    (
        {"index": 0, "delta": {}, "finish_reason": "end_turn"},
        {"index": 0, "delta": {}, "finish_reason": "stop"},
    ),
    ({"index": 0, "delta": {}, "finish_reason": ""}, {"index": 0, "delta": {}, "finish_reason": None}),
    (
        {"index": 0, "delta": {}, "finish_reason": " Length"},
        {"index": 0, "delta": {}, "finish_reason": "length"},
    ),
    ({"index": 5000, "delta": {}}, {"index": 3, "delta": {}, "finish_reason": None}),
    ({"index": 0, "delta": None}, {"index": 0, "delta": {}}),
    (
        {"index": 0, "delta": {"reasoning": "think"}, "finish_reason": None},
        {"index": 0, "delta": {"reasoning_content": "think"}, "finish_reason": None},
    ),
    ("junk", {"delta": {}, "index": 3, "finish_reason": None}),
]


@pytest.mark.parametrize(("raw", "want"), CASES)
def test_other_chunks_are_normalised(raw: Any, want: dict[str, Any]) -> None:
    assert _normalize_delta(raw, 3) == want
