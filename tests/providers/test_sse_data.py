"""The OpenAI-compatible adapter's stream reading: ``SSEDataParser`` gives the data of the same events as
``SSEParser`` however the bytes are cut, and ``_chunk`` (its inline fast path for the common chunk
included) gives the same choices as ``_normalize_delta`` for every kind of choice, and the same
errors for invalid UTF-8, invalid JSON and an upstream's error event."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelgate.errors import UpstreamError, UpstreamProtocolError
from modelgate.providers.openai_compat import _DONE, OpenAICompatProvider, _normalize_delta
from modelgate.providers.sse import SSEDataParser, SSEParser
from tests.providers.test_openai_deltas import CASES
from tests.providers.test_sse_parser import STREAM

MORE = (
    b'data: {"x": 1}\r\n\r\n'
    b"id: 7\nretry: 10\nevent: e\ndata\n\n"  # a field without a colon: empty data
    b"data:  two spaces\n\n"
    b":only a comment\n\n"
    b"data: a\r\ndata: b\r\n\r\n"
)


def events(parser: Any, parts: list[bytes]) -> list[Any]:
    out: list[Any] = []
    for part in parts:
        out += parser.feed(part)
    return out + parser.end()


@pytest.mark.parametrize("stream", [STREAM, MORE, STREAM + b"\n\n" + MORE])
def test_the_same_data_as_the_full_parser_however_cut(stream: bytes) -> None:
    want = [e.data.encode() for e, _ in events(SSEParser("p", keep_frames=False), [stream])]
    assert want  # the streams have events
    for size in range(1, 14):
        parts = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert events(SSEDataParser(), parts) == want


def provider() -> OpenAICompatProvider:
    p = OpenAICompatProvider.__new__(OpenAICompatProvider)
    p.name = "up"
    return p


CHOICES: list[Any] = [
    {"index": 0, "delta": {"content": "hi"}, "finish_reason": None},
    {"index": 1, "delta": {}, "finish_reason": "stop", "logprobs": None},
    *[raw for raw, _ in CASES],
]


@pytest.mark.parametrize("choice", CHOICES)
def test_a_chunk_of_one_choice_reads_as_normalise_says(choice: Any) -> None:
    raw = orjson.dumps({"id": "c", "object": "chat.completion.chunk", "choices": [choice]})
    chunk = provider()._chunk(raw)
    assert chunk is not None and chunk is not _DONE
    assert chunk.choices == [_normalize_delta(orjson.loads(orjson.dumps(choice)), 0)]
    assert chunk.usage is None


def test_usage_and_several_choices_take_the_full_path() -> None:
    raw = orjson.dumps(
        {
            "choices": [{"index": 0, "delta": {"content": "a"}}, {"index": 1, "delta": {}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4},
        }
    )
    chunk = provider()._chunk(raw)
    assert chunk is not None and chunk.usage is not None
    assert (chunk.usage.prompt_tokens, chunk.usage.completion_tokens) == (3, 4)
    assert [c["index"] for c in chunk.choices] == [0, 1]
    assert provider()._chunk(b'{"choices": [], "usage": null}') is None


def test_done_and_the_errors() -> None:
    assert provider()._chunk(b"[DONE]") is _DONE
    assert provider()._chunk(b" [DONE] ") is _DONE
    with pytest.raises(UpstreamProtocolError, match="not valid UTF-8"):
        provider()._chunk(b'{"choices": "\xff"}')
    with pytest.raises(UpstreamProtocolError, match="not JSON"):
        provider()._chunk(b"{nope")
    with pytest.raises(UpstreamProtocolError, match="bad chunk"):
        provider()._chunk(b"[1, 2]")
    with pytest.raises(UpstreamProtocolError, match="bad chunk"):
        provider()._chunk(b'{"choices": {"a": 1}}')
    with pytest.raises(UpstreamError, match="overloaded"):
        provider()._chunk(b'{"error": {"message": "overloaded", "code": 529}}')
