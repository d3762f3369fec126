"""OpenAI's audio endpoints for OpenAI-compatible upstreams (``openai_compat.py``).

Speech: ``POST /audio/speech`` with the upstream model name; the audio bytes are passed on in the
pieces they arrive in (an upstream that streams its audio is streamed to the client). A 2xx answer
that is JSON or text instead of audio is an ``UpstreamProtocolError``.

Transcriptions and translations: ``POST /audio/transcriptions`` | ``/audio/translations`` as
``multipart/form-data``, always asking for ``verbose_json`` (the duration billing reads, and the
segments the door renders ``srt`` / ``vtt`` from). The answer must hold a ``text``; a duration,
segments or words that are not what OpenAI documents are an ``UpstreamProtocolError``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.base import SpeechCall, Transcript, TranscriptionCall
from modelgate.providers.formdata import form_body
from modelgate.providers.http import HTTPUpstream

_NOT_AUDIO = ("application/json", "text/plain", "text/html", "text/event-stream")


def speech_body(call: SpeechCall) -> dict[str, Any]:
    body: dict[str, Any] = {
        **call.options,
        "model": call.upstream_model,
        "input": call.input,
        "voice": call.voice,
        "response_format": call.response_format,
    }
    extra = call.extra.get("body")
    body.update(extra if isinstance(extra, dict) else {})
    return body


async def speech(http: HTTPUpstream, name: str, path: str, call: SpeechCall) -> AsyncIterator[bytes]:
    async with http.post(path, speech_body(call)) as resp:
        if resp.content_type in _NOT_AUDIO:
            raise UpstreamProtocolError(
                f"upstream {name} answered {resp.content_type} instead of audio", provider=name
            )
        async for chunk in resp.chunks():
            if chunk:
                yield chunk


async def transcribe(http: HTTPUpstream, name: str, path: str, call: TranscriptionCall) -> Transcript:
    fields = [("model", call.upstream_model), ("response_format", "verbose_json")]
    for key, value in call.options.items():
        for item in value if isinstance(value, list) else [value]:
            fields.append((f"{key}[]" if isinstance(value, list) else key, str(item)))
    body, ctype = form_body(fields, [("file", call.filename, call.content_type, call.file)])
    data = await http.post_json(path, body, headers={"Content-Type": ctype})
    return parse_transcript(name, data)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and 0 <= value < 10**7 else None


def parse_transcript(name: str, data: Any) -> Transcript:
    def bad(what: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(f"upstream {name} answered {what}", provider=name)

    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise bad("a transcription without text")
    duration = data.get("duration")
    if duration is not None and _seconds(duration) is None:
        raise bad("a duration that is not a number of seconds")
    timed: dict[str, list[dict[str, Any]]] = {}
    for key, label in (("segments", "text"), ("words", "word")):
        raw = data.get(key)
        if raw is None:
            continue
        if not isinstance(raw, list):
            raise bad(f"{key} that are not a list")
        items = []
        for item in raw:
            start = _seconds(item.get("start")) if isinstance(item, dict) else None
            end = _seconds(item.get("end")) if isinstance(item, dict) else None
            if start is None or end is None or end < start or not isinstance(item.get(label), str):
                raise bad(f"{key} without start, end and {label}")
            items.append({**item, "start": start, "end": end})
        timed[key] = items
    language = data.get("language")
    return Transcript(
        text=data["text"],
        duration=_seconds(duration),
        language=language[:32] if isinstance(language, str) else None,
        segments=timed.get("segments", []),
        words=timed.get("words"),
    )
