"""providers/checks.py at the edges of its fast paths: the common value returns at once, everything
else still goes through the full rules."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.base import Chunk
from modelgate.providers.checks import MAX_TOKEN_COUNT, checked_chunk, finish_reason, token_count


@pytest.mark.parametrize(
    ("raw", "want"), [(0, 0), (7, 7), (MAX_TOKEN_COUNT, MAX_TOKEN_COUNT), (None, 0), (3.0, 3)]
)
def test_token_counts_accepted(raw: Any, want: int) -> None:
    assert token_count(raw, provider="p", field="f") == want


@pytest.mark.parametrize("raw", [True, False, -1, MAX_TOKEN_COUNT + 1, 2.5, "3", [1], {"n": 1}])
def test_token_counts_refused(raw: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        token_count(raw, provider="p", field="f")


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("stop", "stop"),
        ("tool_calls", "tool_calls"),
        (" Length ", "length"),
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("something new", "stop"),
        (None, "stop"),
        ("", "stop"),
        (["stop"], "stop"),  # unhashable: no fast path, no TypeError
        ({"a": 1}, "stop"),
        (3, "stop"),
    ],
)
def test_finish_reasons(raw: Any, want: str) -> None:
    assert finish_reason(raw) == want


def test_finish_reason_default_for_missing() -> None:
    assert finish_reason(None, default=None) is None


@pytest.mark.parametrize(
    ("choices", "want"),
    [
        ([{"index": 0, "delta": {}, "finish_reason": None}], [None]),
        ([{"index": 0, "delta": {}, "finish_reason": "length"}], ["length"]),
        ([{"index": 0, "delta": {}, "finish_reason": " STOP "}], ["stop"]),
        ([{"index": 0, "delta": {}, "finish_reason": "end_turn"}], ["stop"]),
        ([{"index": 0, "delta": {}, "finish_reason": ["stop"]}], ["stop"]),  # unhashable: no crash
        ([{"index": 0, "finish_reason": None}, {"index": 1, "finish_reason": "weird"}], [None, "stop"]),
    ],
)
def test_checked_chunk_fast_path_gives_the_full_rules_answer(choices: list[Any], want: list[Any]) -> None:
    chunk = checked_chunk(Chunk(choices=choices), provider="p")
    assert [c["finish_reason"] for c in chunk.choices] == want


@pytest.mark.parametrize("choices", [[1], ["x"], "not a list"])
def test_checked_chunk_refuses_choices_that_are_not_objects(choices: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        checked_chunk(Chunk(choices=choices), provider="p")
