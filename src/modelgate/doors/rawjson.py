"""Edit one string value inside a JSON document without re-encoding the rest.

Pass-through doors forward a client's body (and an upstream's answer) byte for byte apart from the
model name: ``replace_string(raw, ("model",), "upstream-name")``. The scan walks only the objects
on the key path and skips every other value with a C-speed search for the next structural
character, so a body of megabytes (base64 images) costs microseconds, not a Python loop per byte.
Skipping a value still costs a step per string and bracket in it, and the Python SDKs order a
Messages body ``max_tokens, messages, model``: past ``SKIP_LIMIT`` bytes of values before the key,
``replace_top_level_string`` looks for the key from the end instead (its last spelling ``"model"``
whose tail after it parses as the rest of the top-level object: one orjson parse of that tail).
Input that is not the expected shape comes back re-encoded (correct, no longer byte-identical).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_STRUCT = re.compile(rb'["\[\]{}]')
_SCALAR_END = re.compile(rb"[,}\]\s]")
_WS = b" \t\r\n"


SKIP_LIMIT = 16_384  # bytes of values the forward scan skips before it looks from the end


class _Shape(Exception):
    pass


class _TooLong(Exception):
    pass


def _ws(b: bytes, i: int) -> int:
    n = len(b)
    while i < n and b[i] in _WS:
        i += 1
    return i


def _string_end(b: bytes, i: int, stop: int | None = None) -> int:
    """The end of the string at ``i``: the next quote not escaped (``find``: memchr, not a regex
    step per byte); ``stop``: give up (``_TooLong``) past this position."""
    pos = i + 1
    while True:
        q = b.find(b'"', pos)
        if q < 0:
            raise _Shape
        n = q
        while b[n - 1] == 0x5C:  # backslashes before the quote: an odd number escapes it
            n -= 1
        if (q - n) % 2 == 0:
            return q + 1
        pos = q + 1
        if stop is not None and pos > stop:
            raise _TooLong


def _value_end(b: bytes, i: int, limit: int | None = None) -> int:
    """The end of the value at ``i``; ``limit``: give up (``_TooLong``) past that many bytes."""
    stop = None if limit is None else i + limit
    c = b[i : i + 1]
    if c == b'"':
        return _string_end(b, i, stop)
    if c in (b"{", b"["):
        depth, pos = 0, i
        while True:
            if stop is not None and pos > stop:
                raise _TooLong
            m = _STRUCT.search(b, pos)
            if m is None:
                raise _Shape
            ch = b[m.start()]
            if ch == 0x22:
                pos = _string_end(b, m.start(), stop)
                continue
            depth += 1 if ch in (0x7B, 0x5B) else -1
            pos = m.end()
            if depth == 0:
                return pos
    m = _SCALAR_END.search(b, i)
    return m.start() if m is not None else len(b)


def value_span(b: bytes, path: tuple[str, ...], skip: int | None = None) -> tuple[int, int] | None:
    """The byte span of the value at ``path`` (keys of nested objects), or None if absent. ``skip``:
    raise ``_TooLong`` rather than skip more than that many bytes of other values in all."""
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
            if name == key:
                if depth == len(path) - 1:
                    return v_start, _value_end(b, v_start)
                i, found = v_start, True
                break
            v_end = _value_end(b, v_start, skip)
            if skip is not None:
                skip -= v_end - v_start
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
    """``replace_string(raw, (key,), value)``, the key looked for from the end when the values before
    it are long (the module's docstring)."""
    try:
        span = value_span(raw, (key,), SKIP_LIMIT)
    except _TooLong:
        span = _span_from_end(raw, key)
        if span is None:  # not found that way (an escaped spelling, a later duplicate): the full scan
            return replace_string(raw, (key,), value)
    except (_Shape, orjson.JSONDecodeError, IndexError):
        return _reencoded(raw, (key,), value)
    if span is None or raw[span[0] : span[0] + 1] != b'"':
        return _reencoded(raw, (key,), value)
    return b"".join((raw[: span[0]], orjson.dumps(value), memoryview(raw)[span[1] :]))


def _span_from_end(raw: bytes, key: str) -> tuple[int, int] | None:
    """The span of the string value of the top-level ``key``, found from the end: the last ``"key"``
    token (its quote not escaped) that, with a ``{`` before it, parses to the end of the body (so it
    is a key of the top-level object, not of a nested one) and whose value is the one that parse
    gives (no later duplicate); None when there is none such."""
    needle = orjson.dumps(key)
    at = len(raw)
    while (at := raw.rfind(needle, 0, at)) > 0:
        slashes = at
        while slashes > 0 and raw[slashes - 1] == 0x5C:
            slashes -= 1
        if (at - slashes) % 2:  # an escaped quote: inside a string
            continue
        try:
            tail = orjson.loads(b"{" + raw[at:])
        except orjson.JSONDecodeError:
            continue
        try:
            colon = _ws(raw, at + len(needle))
            start = _ws(raw, colon + 1)
            if raw[colon : colon + 1] != b":" or raw[start : start + 1] != b'"':
                return None
            end = _string_end(raw, start)
            return (start, end) if orjson.loads(raw[start:end]) == tail.get(key) else None
        except (_Shape, orjson.JSONDecodeError):
            return None
    return None


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
