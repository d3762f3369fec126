"""The SSE parser is fed the body as it arrives: however the bytes are cut, the same events."""

from __future__ import annotations

import pytest

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.sse import SSEEvent, SSEParser

STREAM = (
    b": a comment\r\n"
    b"event: message_start\r\n"
    b'data: {"a": 1}\r\n'
    b"\r\n"
    b"data: first line\n"
    b"data:second line\n"
    b"\n"
    b"event: ping\n"
    b"\n"
    b"data: caf\xc3\xa9\n"
    b"\n"
    b"data: [DONE]"  # the last line without its line ending
)


def run(parts: list[bytes], *, keep_frames: bool) -> list[tuple[SSEEvent, bytes]]:
    parser = SSEParser("p", keep_frames=keep_frames)
    out: list[tuple[SSEEvent, bytes]] = []
    for part in parts:
        out += parser.feed(part)
    return out + parser.end()


@pytest.mark.parametrize("keep_frames", [False, True])
def test_every_cut_gives_the_same_events(keep_frames: bool) -> None:
    whole = run([STREAM], keep_frames=keep_frames)
    for size in range(1, 12):
        parts = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
        assert run(parts, keep_frames=keep_frames) == whole
    events = [e for e, _ in whole]
    expected = [
        SSEEvent("message_start", '{"a": 1}'),
        SSEEvent(None, "first line\nsecond line"),
        SSEEvent(None, "café"),
        SSEEvent(None, "[DONE]"),
    ]
    if keep_frames:  # a named event without data is forwarded too
        expected.insert(2, SSEEvent("ping", ""))
        assert whole[0][1] == b': a comment\nevent: message_start\ndata: {"a": 1}\n\n'  # as it came
    assert events == expected


def test_invalid_utf8_is_an_invalid_answer() -> None:
    with pytest.raises(UpstreamProtocolError):
        SSEParser("p", keep_frames=False).feed(b"data: \xff\n\n")


@pytest.mark.parametrize("line", [b"data: \xff", b"data:\xff", b"event: \xff", b"data: ok\xc3"])
def test_invalid_utf8_in_any_line_is_an_invalid_answer(line: bytes) -> None:
    for keep_frames in (False, True):
        with pytest.raises(UpstreamProtocolError):
            SSEParser("p", keep_frames=keep_frames).feed(line + b"\n\n")
