"""Gemini speech generation (``POST /models/{model}:generateContent`` with ``responseModalities:
["AUDIO"]``) for ``type: speech`` models on a ``type: gemini`` provider (``gemini.py``).

The voice is a Gemini prebuilt voice name (``Kore``, ``Puck``, …), or ``options.voices[<OpenAI
voice>]`` when the route maps names; ``instructions`` go before the text (Gemini takes its style from
the prompt). The answer is 16-bit little-endian mono PCM (``inlineData`` of ``audio/L16;rate=24000``):
passed on as ``pcm``, or as ``wav`` with a RIFF header; other formats are a 400. An answer without
audio, or with bytes that are not base64 PCM, is an ``UpstreamProtocolError`` (502, nothing charged).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import AsyncIterator
from typing import Any

from modelgate.errors import InvalidRequestError, UpstreamProtocolError
from modelgate.providers.base import SpeechCall
from modelgate.providers.http import HTTPUpstream

FORMATS = ("wav", "pcm")
_RATE = re.compile(r"rate=(\d{4,6})")


def request_body(call: SpeechCall) -> dict[str, Any]:
    if call.response_format not in FORMATS:
        raise InvalidRequestError(
            f"response_format: {call.model.id} makes {', '.join(FORMATS)}; got {call.response_format}",
            param="response_format",
        )
    voices: Any = call.extra.get("voices")
    voice = voices.get(call.voice) if isinstance(voices, dict) else None
    text = call.input
    instructions = call.options.get("instructions")
    if isinstance(instructions, str) and instructions:
        text = f"{instructions}: {text}"
    return {
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice or call.voice}}},
        },
    }


def wav_header(pcm_bytes: int, rate: int) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + pcm_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", pcm_bytes)
    )


def parse_audio(name: str, data: Any) -> tuple[bytes, int]:
    def bad(what: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(f"upstream {name} answered {what}", provider=name)

    try:
        inline = data["candidates"][0]["content"]["parts"][0]["inlineData"]
        raw, mime = inline["data"], str(inline.get("mimeType", ""))
    except (KeyError, IndexError, TypeError):
        raise bad("no audio") from None
    if not isinstance(raw, str) or not mime.startswith("audio/"):
        raise bad("no audio")
    try:
        pcm = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise bad("audio that is not base64") from None
    match = _RATE.search(mime)
    return pcm, int(match.group(1)) if match else 24_000


async def speech(http: HTTPUpstream, name: str, path: str, call: SpeechCall) -> AsyncIterator[bytes]:
    body = request_body(call)
    pcm, rate = parse_audio(name, await http.post_json(path, body))
    if call.response_format == "wav":
        yield wav_header(len(pcm), rate)
    yield pcm
