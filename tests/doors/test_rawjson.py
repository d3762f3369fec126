"""Editing one value of a JSON body in place: everything else stays byte for byte."""

from __future__ import annotations

import orjson
import pytest

from modelgate.doors.rawjson import (
    SKIP_LIMIT,
    replace_string,
    replace_string_in_frame,
    replace_top_level_string,
)

CASES = [
    b'{"model":"a","messages":[]}',
    b'{ "messages" : [ {"model": "inner", "text": "\\"model\\": \\"x\\" {[]}"} ] ,\n "model" :"a" }',
    b'{"m\\u006fdel2": 1, "metadata": {"model": "no"}, "model": "a", "tail": [1, 2.5e3, true, null]}',
    b'{"data": "' + b"QUJD" * 100_000 + b'", "model": "a"}',
]


@pytest.mark.parametrize("raw", CASES)
def test_only_the_model_value_changes(raw: bytes) -> None:
    out = replace_top_level_string(raw, "model", "up/stream \u00e9")
    assert orjson.loads(out) == {**orjson.loads(raw), "model": "up/stream \u00e9"}
    start = raw.index(b'"a"', raw.rindex(b'"model"'))
    assert out == raw[:start] + orjson.dumps("up/stream \u00e9") + raw[start + 3 :]


def test_nested_path_and_fallbacks() -> None:
    frame = b'{"type":"message_start","message":{"id":"m","model":"claude-x","usage":{"model":1}}}'
    assert replace_string(frame, ("message", "model"), "mine") == frame.replace(b"claude-x", b"mine")
    # Not a string where expected, or absent: re-encoded correctly rather than left stale.
    assert orjson.loads(replace_top_level_string(b'{"model": 5}', "model", "x")) == {"model": "x"}
    assert orjson.loads(replace_top_level_string(b'{"other": 5}', "model", "x")) == {"other": 5, "model": "x"}
    assert replace_top_level_string(b"not json", "model", "x") == b"not json"


def test_replace_string_in_frame_edits_only_the_data_line() -> None:
    frame = b'event: message_start\ndata: {"message":{"model":"up-1","id":"m"}}\n\n'
    out = replace_string_in_frame(frame, ("message", "model"), "claude-x")
    assert out == b'event: message_start\ndata: {"message":{"model":"claude-x","id":"m"}}\n\n'
    tail = b'data: {"response":{"model":"up"}}'  # no newline after the data
    assert replace_string_in_frame(tail, ("response", "model"), "m") == b'data: {"response":{"model":"m"}}'
    assert replace_string_in_frame(b": keep-alive\n\n", ("response", "model"), "m") == b": keep-alive\n\n"


BIG = (
    b'[{"role": "user", "content": [{"type": "text", "text": "'
    + b'word \\n \\" ' * 4000
    + b'"}]}'
    + (b', {"role": "user", "content": [{"type": "tool_use", "input": {"model": "inner"}}]}]')
)
LATE = [
    # the Python SDKs' order: the history before the model
    b'{"max_tokens": 5, "messages": ' + BIG + b', "model": "a", "metadata": {"model": "no"}}',
    b'{"messages": ' + BIG + b',\n  "model" :  "a"  }',
    # a key whose text ends in "model (escaped quote): not the key
    b'{"messages": ' + BIG + b', "say \\"model": "x", "model": "a"}',
    b'{"messages": ' + BIG + b', "model": "a", "say \\"model": "x"}',
    # an escaped spelling: the forward scan decides, as before
    b'{"messages": ' + BIG + b', "m\\u006fdel": "a"}',
    # not a string, absent: re-encoded
    b'{"messages": ' + BIG + b', "model": 5}',
    b'{"messages": ' + BIG + b"}",
]


@pytest.mark.parametrize("raw", LATE)
def test_a_model_after_a_long_history_is_found_from_the_end(raw: bytes) -> None:
    """Past SKIP_LIMIT bytes of values before it the key is looked for from the end: the same bytes
    come out as the forward scan's (which skips the whole history, a step per string)."""
    assert len(BIG) > SKIP_LIMIT
    out = replace_top_level_string(raw, "model", "up/stream")
    assert out == replace_string(raw, ("model",), "up/stream")
    assert orjson.loads(out)["model"] == "up/stream"


def test_of_two_late_model_keys_the_one_a_parser_reads_is_replaced() -> None:
    """A duplicate key: JSON parsers (orjson, the upstream's) read the last one, so that is the one
    found from the end and replaced (the forward scan, for a short body, replaces the first)."""
    raw = b'{"messages": ' + BIG + b', "model": "a", "model": "b"}'
    out = replace_top_level_string(raw, "model", "up/stream")
    assert out == raw.replace(b'"model": "b"', b'"model": "up/stream"')
    assert orjson.loads(out)["model"] == "up/stream"
