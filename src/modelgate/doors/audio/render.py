"""A transcript in each response format OpenAI offers: ``json``, ``text``, ``srt``, ``vtt``,
``verbose_json`` (the upstream is always asked for the verbose answer; the door renders the rest)."""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.providers.base import Transcript

CONTENT_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "text/plain; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(t: Transcript, seconds: int) -> list[tuple[float, float, str]]:
    if t.segments:
        return [(s["start"], s["end"], str(s["text"]).strip()) for s in t.segments]
    return [(0.0, float(t.duration if t.duration is not None else seconds), t.text.strip())]


def render(t: Transcript, fmt: str, *, task: str, seconds: int, meta: dict[str, Any]) -> bytes:
    usage = {"type": "duration", "seconds": seconds}
    if fmt == "json":
        return orjson.dumps({"text": t.text, "usage": usage, "meta": meta})
    if fmt == "verbose_json":
        body: dict[str, Any] = {
            "task": task,
            "language": t.language or "",
            "duration": t.duration if t.duration is not None else float(seconds),
            "text": t.text,
            "segments": t.segments,
        }
        if t.words is not None:
            body["words"] = t.words
        return orjson.dumps({**body, "usage": usage, "meta": meta})
    if fmt == "text":
        return (t.text + "\n").encode()
    cues = _cues(t, seconds)
    if fmt == "srt":
        blocks = [
            f"{i}\n{_stamp(a, ',')} --> {_stamp(b, ',')}\n{text}\n" for i, (a, b, text) in enumerate(cues, 1)
        ]
        return "\n".join(blocks).encode()
    blocks = [f"{_stamp(a, '.')} --> {_stamp(b, '.')}\n{text}\n" for a, b, text in cues]
    return ("WEBVTT\n\n" + "\n".join(blocks)).encode()
