"""Edit one string value inside a JSON document without re-encoding the rest.

Pass-through doors forward a client's body (and an upstream's answer) byte for byte apart from the
model name: ``replace_string(raw, ("model",), "upstream-name")``. The scan walks only the objects
on the key path and skips every other value with a C-speed search for the next structural
character, so a body of megabytes (base64 images) costs microseconds, not a Python loop per byte.
Input that is not the expected shape comes back re-encoded (correct, no longer byte-identical).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_STRUCT = re.compile(rb'["\[\]{}]')
_IN_STRING = re.compile(rb'["\\]')
_SCALAR_END = re.compile(rb"[,}\]\s]")
_WS = b" \t\r\n"


class _Shape(Exception):
    pass


def _ws(b: bytes, i: int) -> int:
    n = len(b)
    while i < n and b[i] in _WS:
        i += 1
    return i


def _string_end(b: bytes, i: int) -> int:
    pos = i + 1
    while True:
        m = _IN_STRING.search(b, pos)
        if m is None:
            raise _Shape
        if b[m.start()] == 0x5C:  # backslash: skip the escaped character
            pos = m.start() + 2
            continue
        return m.start() + 1


def _value_end(b: bytes, i: int) -> int:
    c = b[i : i + 1]
    if c == b'"':
        return _string_end(b, i)
    if c in (b"{", b"["):
        depth, pos = 0, i
        while True:
            m = _STRUCT.search(b, pos)
            if m is None:
                raise _Shape
            ch = b[m.start()]
            if ch == 0x22:
                pos = _string_end(b, m.start())
                continue
            depth += 1 if ch in (0x7B, 0x5B) else -1
            pos = m.end()
            if depth == 0:
                return pos
    m = _SCALAR_END.search(b, i)
    return m.start() if m is not None else len(b)


def value_span(b: bytes, path: tuple[str, ...]) -> tuple[int, int] | None:
    """The byte span of the value at ``path`` (keys of nested objects), or None if absent."""
    i = _ws(b, 0)
    for depth, key in enumerate(path):
        if b[i : i + 1] != b"{":
            raise _Shape
        i = _ws(b, i + 1)
        found = False
        while b[i : i + 1] != b"}":
            if b[i : i + 1] != b'"':
                raise _Shape
            k_end = _string_end(b, i)
            raw_key = b[i + 1 : k_end - 1]
            name = orjson.loads(b[i:k_end]) if b"\\" in raw_key else raw_key.decode("utf-8", "replace")
            i = _ws(b, k_end)
            if b[i : i + 1] != b":":
                raise _Shape
            v_start = _ws(b, i + 1)
            v_end = _value_end(b, v_start)
            if name == key:
                if depth == len(path) - 1:
                    return v_start, v_end
                i, found = v_start, True
                break
            i = _ws(b, v_end)
            if b[i : i + 1] == b",":
                i = _ws(b, i + 1)
        if not found:
            return None
    return None


def replace_string(raw: bytes, path: tuple[str, ...], value: str) -> bytes:
    """``raw`` with the string at ``path`` set to ``value``; everything else byte-identical."""
    try:
        span = value_span(raw, path)
    except (_Shape, orjson.JSONDecodeError, IndexError):
        span = None
        return _reencoded(raw, path, value)
    if span is None or raw[span[0] : span[0] + 1] != b'"':
        return _reencoded(raw, path, value)
    # one copy of the body (a join, the tail as a view), not three (a slice and two concatenations)
    return b"".join((raw[: span[0]], orjson.dumps(value), memoryview(raw)[span[1] :]))


def replace_top_level_string(raw: bytes, key: str, value: str) -> bytes:
    return replace_string(raw, (key,), value)


def data_span(frame: bytes) -> tuple[int, int] | None:
    """Where the JSON of an SSE frame's (first) ``data:`` line starts and ends, if it has one."""
    start = frame.find(b"data: ")
    if start < 0:
        return None
    start += 6
    end = frame.find(b"\n", start)
    return start, (end if end >= 0 else len(frame))


def replace_string_in_frame(frame: bytes, path: tuple[str, ...], value: str) -> bytes:
    """An SSE frame passed through with the string at ``path`` of its data set to ``value`` (the
    model name as the client asked it: Messages ``message_start``, Responses ``response.*``);
    every other byte unchanged."""
    span = data_span(frame)
    if span is None:
        return frame
    start, end = span
    return frame[:start] + replace_string(frame[start:end], path, value) + frame[end:]


def _reencoded(raw: bytes, path: tuple[str, ...], value: str) -> bytes:
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    node = data
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return raw
        node = node[key]
    if not isinstance(node, dict):
        return raw
    node[path[-1]] = value
    return orjson.dumps(data)
