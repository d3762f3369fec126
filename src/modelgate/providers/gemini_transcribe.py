"""Gemini transcription (audio understanding: ``POST /models/{model}:generateContent`` with the
audio as an ``inlineData`` part) for ``type: transcription`` models on a ``type: gemini`` provider
(``gemini.py``).

The request is one user turn: the instruction as a text part ("Generate a transcript of the speech."
or, for ``/translations``, a translation into English; the client's ``language`` and ``prompt`` are
added to it as hints), then the file's bytes as base64 ``inlineData`` with the MIME type of its own
bytes (Gemini takes WAV, MP3, AIFF, AAC, OGG and FLAC: anything else is a 400), and
``temperature`` when the client sent one. The answer's text parts are the transcript. Gemini counts
32 tokens per second of audio: ``usageMetadata.promptTokensDetails``' ``AUDIO`` count / 32 is the
duration reported (what a non-WAV file is charged; a WAV file's comes from its header). No timed
segments: ``srt`` / ``vtt`` get one cue. An answer without text is an ``UpstreamProtocolError``.
"""

from __future__ import annotations

import base64
from typing import Any

from modelgate.errors import InvalidRequestError, UpstreamProtocolError
from modelgate.providers.base import Transcript, TranscriptionCall
from modelgate.providers.http import HTTPUpstream

AUDIO_TOKENS_PER_SECOND = 32


def audio_mime(d: bytes) -> str:
    """The MIME type of an audio file by its own bytes, among those Gemini takes."""
    if d[:4] == b"RIFF" and d[8:12] == b"WAVE":
        return "audio/wav"
    if d[:4] == b"FORM" and d[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff"
    if d[:4] == b"fLaC":
        return "audio/flac"
    if d[:4] == b"OggS":
        return "audio/ogg"
    if d[:3] == b"ID3" or (len(d) > 1 and d[0] == 0xFF and d[1] & 0xE6 == 0xE2):  # MPEG layer III
        return "audio/mp3"
    if len(d) > 1 and d[0] == 0xFF and d[1] & 0xF6 == 0xF0:  # AAC in ADTS frames
        return "audio/aac"
    raise InvalidRequestError(
        "file: Gemini takes WAV, MP3, AIFF, AAC, OGG or FLAC audio", param="file", code="invalid_file"
    )


def request_body(call: TranscriptionCall) -> dict[str, Any]:
    if call.translate:
        instruction = "Translate the speech into English and answer with the English text only."
    else:
        instruction = "Generate a transcript of the speech. Answer with the transcript only."
    language = call.options.get("language")
    if isinstance(language, str) and not call.translate:
        instruction += f" The speech is in the language with ISO-639 code {language}."
    prompt = call.options.get("prompt")
    if isinstance(prompt, str) and prompt:
        instruction += f" Context and spelling hints: {prompt}"
    body: dict[str, Any] = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": instruction},
                    {
                        "inlineData": {
                            "mimeType": audio_mime(call.file),
                            "data": base64.b64encode(call.file).decode(),
                        }
                    },
                ],
            }
        ]
    }
    if isinstance(call.options.get("temperature"), float):
        body["generationConfig"] = {"temperature": call.options["temperature"]}
    return body


def parse_transcript(name: str, data: Any) -> Transcript:
    try:
        parts = data["candidates"][0]["content"]["parts"]
        text = "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    except (KeyError, IndexError, TypeError):
        raise UpstreamProtocolError(f"upstream {name} answered no transcript", provider=name) from None
    duration = None
    details = (data.get("usageMetadata") or {}).get("promptTokensDetails")
    if isinstance(details, list):
        for item in details:
            count = item.get("tokenCount") if isinstance(item, dict) else None
            if item.get("modality") == "AUDIO" and isinstance(count, int) and 0 < count < 10**9:
                duration = count / AUDIO_TOKENS_PER_SECOND
    return Transcript(text=text.strip(), duration=duration)


async def transcribe(http: HTTPUpstream, name: str, path: str, call: TranscriptionCall) -> Transcript:
    body = request_body(call)
    return parse_transcript(name, await http.post_json(path, body))
