"""Editing one value of a JSON body in place: everything else stays byte for byte."""

from __future__ import annotations

import orjson
import pytest

from modelgate.doors.rawjson import replace_string, replace_string_in_frame, replace_top_level_string

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
