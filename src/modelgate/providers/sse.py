"""Server-sent events from an upstream: the one incremental parser, the async iterators over a
response body (events, or events with their raw frames for pass-through), and the strict decoding of
a stream line and an event's JSON (invalid UTF-8 or JSON is an invalid upstream answer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.httpclient import Response


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


async def iter_sse(resp: Response, provider: str = "upstream") -> AsyncIterator[SSEEvent]:
    """Parse a ``text/event-stream`` body into events as bytes arrive (never buffers the stream)."""
    parser = SSEParser(provider, keep_frames=False)
    while (data := await resp.chunk()) is not None:
        for event, _ in parser.feed(data):
            yield event
    for event, _ in parser.end():
        yield event


async def iter_sse_frames(
    resp: Response, provider: str = "upstream"
) -> AsyncIterator[tuple[SSEEvent, bytes]]:
    """Like ``iter_sse``, with each event's frame as it came (its lines, ``\n``-terminated), for
    pass-through: the frame is forwarded as is, the parsed event only read."""
    parser = SSEParser(provider, keep_frames=True)
    while (data := await resp.chunk()) is not None:
        for item in parser.feed(data):
            yield item
    for item in parser.end():
        yield item


class SSEParser:
    """The one SSE parser, fed the body as it arrives: events (with their raw frames when
    ``keep_frames``; else ``b""``). Without frames, an event is produced only when it has data
    (what adapters read); with them, a named event without data is forwarded too.

    Synchronous and incremental, so that the async iterators above yield once per event (a line
    iterator between them cost two more generator resumptions per event)."""

    __slots__ = ("_data", "_event", "_lines", "_pending", "keep_frames", "provider")

    def __init__(self, provider: str, *, keep_frames: bool) -> None:
        self.provider = provider
        self.keep_frames = keep_frames
        self._pending = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._lines: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple[SSEEvent, bytes]]:
        """The events completed by ``data``."""
        pending = self._pending + data if self._pending else data
        if b"\n" not in data:
            self._pending = pending
            return []
        *complete, self._pending = pending.split(b"\n")
        out: list[tuple[SSEEvent, bytes]] = []
        keep = self.keep_frames
        for raw_line in complete:
            if raw_line.endswith(b"\r"):
                raw_line = raw_line[:-1]
            if not raw_line:
                if self._data or (keep and self._event):
                    frame = b"\n".join(self._lines) + b"\n\n" if keep else b""
                    out.append((SSEEvent(self._event, "\n".join(self._data)), frame))
                self._event, self._data, self._lines = None, [], []
                continue
            if keep:
                self._lines.append(raw_line)
            if raw_line.startswith(b"data: "):  # the common line first: no general field parsing
                try:
                    self._data.append(raw_line[6:].decode("utf-8"))
                    continue
                except UnicodeDecodeError:
                    pass  # decode_line raises the upstream error below
            line = decode_line(raw_line, self.provider)
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                self._data.append(value)
            elif field == "event":
                self._event = value
        return out

    def end(self) -> list[tuple[SSEEvent, bytes]]:
        """The events left when the body ended (a last line without its line ending)."""
        out = self.feed(b"\n") if self._pending else []
        if self._data:
            frame = b"\n".join(self._lines) + b"\n\n" if self.keep_frames else b""
            out.append((SSEEvent(self._event, "\n".join(self._data)), frame))
            self._event, self._data, self._lines = None, [], []
        return out


class SSEDataParser:
    """The ``data`` of each event, as bytes: what an adapter that reads nothing else needs (event names,
    ids, ``retry`` and comments are read past). No text decoding per line: the JSON parser the adapter
    runs checks the UTF-8 (``decode_line`` gives the error when it fails). The same events, split the
    same way, as ``SSEParser`` (tests/providers/test_sse_data.py)."""

    __slots__ = ("_data", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        """The data of the events completed by ``data``."""
        pending = self._pending + data if self._pending else data
        if b"\n" not in data:
            self._pending = pending
            return []
        *complete, self._pending = pending.split(b"\n")
        out: list[bytes] = []
        parts = self._data
        for line in complete:
            if line.startswith(b"data: "):  # the common line first
                parts.append(line[6:-1] if line.endswith(b"\r") else line[6:])
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if parts:
                    out.append(parts[0] if len(parts) == 1 else b"\n".join(parts))
                    parts = self._data = []
                continue
            field, _, value = line.partition(b":")
            if field == b"data":
                parts.append(value[1:] if value.startswith(b" ") else value)
        return out

    def end(self) -> list[bytes]:
        """The data left when the body ended (a last line without its line ending)."""
        out = self.feed(b"\n") if self._pending else []
        if self._data:
            out.append(b"\n".join(self._data))
            self._data = []
        return out


def decode_line(raw: bytes, provider: str) -> str:
    """One line of an upstream stream as text; invalid UTF-8 is an invalid upstream answer."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UpstreamProtocolError(
            f"upstream {provider} sent a stream line that is not valid UTF-8", provider=provider
        ) from exc


def loads_event(name: str, data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(
            f"upstream {name} sent a stream event that is not JSON", provider=name
        ) from exc
