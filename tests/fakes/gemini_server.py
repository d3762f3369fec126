"""A fake of the Gemini API (``v1beta``): ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``, key checked in ``x-goog-api-key`` as the real service does
(400 ``API_KEY_INVALID`` for a wrong key, 403 ``PERMISSION_DENIED`` for none).

Without ``alt=sse`` the real service answers a JSON array of responses; ``json_array`` builds that.

Media: ``:predict`` (Imagen) answers ``sampleCount`` images; ``:generateContent`` with
``responseModalities`` ``AUDIO`` answers inline PCM (speech), with ``IMAGE`` a text part and an inline
PNG (native image output), and a request carrying an ``audio/*`` inline part a transcript with the
audio's token count in ``usageMetadata.promptTokensDetails`` (32 per second), as Google documents.

Embeddings: ``:embedContent``, ``:batchEmbedContents`` and ``:countTokens`` answer, when nothing is
scripted, ``tests.fakes.vectors``' deterministic vectors (``outputDimensionality`` long, else
``embed_dims``) and one token per word; like the real API, embedding answers carry no token count.
Script embedding replies only for a provider that does not count tokens (``embed_count_tokens:
false``): its concurrent ``:countTokens`` would otherwise take a scripted reply.
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import SSE, Reply, ScriptedServer, SSEReply, load
from tests.fakes.openai_server import fake_image
from tests.fakes.vectors import fake_tokens, fake_vector

_PATH = re.compile(
    r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent"
    r"|embedContent|batchEmbedContents|countTokens|predict)$"
)


class GeminiFake(ScriptedServer):
    def __init__(self, *, api_key: str | None = "test-gemini-key") -> None:
        super().__init__()
        self.api_key = api_key

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1beta"

    async def guard(self, request: web.Request) -> web.StreamResponse | None:
        if request.method != "POST" or not _PATH.match(request.path):
            return web.json_response(
                {"error": {"code": 404, "message": f"{request.path} not found", "status": "NOT_FOUND"}},
                status=404,
            )
        if self.api_key is not None:
            given = request.headers.get("x-goog-api-key")
            if given is None:
                return web.json_response(load("gemini_errors.json")["403"], status=403)
            if given != self.api_key:
                return web.json_response(load("gemini_errors.json")["api_key_invalid"], status=400)
        return None

    embed_dims = 3072
    count_tokens_status = 200  # another status makes the default :countTokens answer fail

    async def default_reply(self, request: web.Request, body: bytes) -> web.StreamResponse | None:
        method = _PATH.match(request.path)
        data = orjson.loads(body) if body else {}
        if method is None or not isinstance(data, dict):
            return None
        if method["method"] == "countTokens":
            if self.count_tokens_status != 200:
                err = {"code": self.count_tokens_status, "message": "countTokens failed", "status": "X"}
                return web.json_response({"error": err}, status=self.count_tokens_status)
            texts = [p["text"] for c in data.get("contents", []) for p in c.get("parts", [])]
            return web.json_response({"totalTokens": sum(fake_tokens(t) for t in texts)})
        if method["method"] == "predict":  # Imagen: sampleCount images of the prompt
            prompt = str((data.get("instances") or [{}])[0].get("prompt", ""))
            count = int((data.get("parameters") or {}).get("sampleCount") or 1)
            images = [base64.b64encode(fake_image(prompt, i)).decode() for i in range(count)]
            return web.json_response(
                {"predictions": [{"bytesBase64Encoded": b, "mimeType": "image/png"} for b in images]}
            )
        config = data.get("generationConfig") or {}
        if method["method"] == "generateContent" and "AUDIO" in (config.get("responseModalities") or []):
            return web.json_response(fake_gemini_speech(data))
        if method["method"] == "generateContent" and "IMAGE" in (config.get("responseModalities") or []):
            return web.json_response(fake_gemini_image(data))
        if method["method"] == "generateContent" and _inline(data, "audio/"):
            return web.json_response(fake_gemini_transcript(data))
        if method["method"] == "embedContent":
            return web.json_response({"embedding": self._embed_one(data)})
        if method["method"] == "batchEmbedContents":
            return web.json_response({"embeddings": [self._embed_one(r) for r in data.get("requests", [])]})
        return None

    def _embed_one(self, req: dict[str, Any]) -> dict[str, Any]:
        text = "".join(p.get("text", "") for p in req["content"]["parts"])
        return {"values": fake_vector(text, req.get("outputDimensionality") or self.embed_dims)}

    def model_and_method(self, index: int = -1) -> tuple[str, str]:
        m = _PATH.match(self.requests[index].path)
        assert m is not None
        return m["model"], m["method"]


def fake_gemini_pcm(text: str, voice: str) -> bytes:
    """Deterministic stand-in PCM (16-bit samples) for a speech request."""
    raw = f"{voice}:{text}".encode()
    return raw + b"\x00" * (len(raw) % 2)


def fake_gemini_speech(body: dict[str, Any]) -> dict[str, Any]:
    text = "".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))
    voice = body["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"]
    pcm = base64.b64encode(fake_gemini_pcm(text, voice)).decode()
    part = {"inlineData": {"mimeType": "audio/L16;codec=pcm;rate=24000", "data": pcm}}
    return {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}]}


def _inline(body: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    parts = [p for c in body.get("contents", []) for p in c.get("parts", [])]
    return next(
        (p["inlineData"] for p in parts if p.get("inlineData", {}).get("mimeType", "").startswith(prefix)),
        None,
    )


def _text(body: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))


def fake_gemini_image_prompt(body: dict[str, Any]) -> str:
    """What the fake draws for a native image request: the prompt, an edit's image size, the ratio."""
    source = _inline(body, "image/")
    edit = f" editing {len(base64.b64decode(source['data']))} bytes" if source else ""
    ratio = (body["generationConfig"].get("imageConfig") or {}).get("aspectRatio")
    return f"{_text(body)}{edit} at {ratio}"


def fake_gemini_image(body: dict[str, Any]) -> dict[str, Any]:
    """Native image output as Google documents it: a text part and an ``inlineData`` PNG part."""
    prompt = fake_gemini_image_prompt(body)
    png = base64.b64encode(fake_image(prompt, 0)).decode()
    parts = [{"text": f"Here is {prompt}"}, {"inlineData": {"mimeType": "image/png", "data": png}}]
    usage = {"promptTokenCount": 8, "candidatesTokenCount": 1290, "totalTokenCount": 1298}
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
        "usageMetadata": usage,
    }


def fake_gemini_transcript(body: dict[str, Any]) -> dict[str, Any]:
    """Audio understanding: the text names the audio's type and size; the usage counts 32 tokens per
    second of audio (a WAV header's duration, else 7.25 s), as Gemini does."""
    inline = _inline(body, "audio/") or {}
    data = base64.b64decode(inline.get("data", ""))
    seconds = 7.25
    if data[:4] == b"RIFF":
        seconds = (len(data) - 44) / struct.unpack_from("<I", data, 28)[0]
    instruction = _text(body)
    verb = "translated" if instruction.startswith("Translate") else "heard"
    text = f"{verb} {inline.get('mimeType')} {len(data)} bytes"
    audio_tokens = round(seconds * 32)
    usage = {
        "promptTokenCount": audio_tokens + 12,
        "candidatesTokenCount": 6,
        "totalTokenCount": audio_tokens + 18,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 12},
            {"modality": "AUDIO", "tokenCount": audio_tokens},
        ],
    }
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
        "usageMetadata": usage,
    }


def gemini_sse(events: list[dict[str, Any]], *, event_delay: float = 0.0, **kw: Any) -> SSEReply:
    """``alt=sse`` framing: one ``data:`` line per GenerateContentResponse, no event names, no [DONE]."""
    return SSEReply([SSE(e, delay=event_delay) for e in events], **kw)


def gemini_error(status: int | str, *, as_array: bool = False) -> Reply:
    body = load("gemini_errors.json")[str(status)]
    code = body["error"]["code"]
    return Reply(status=code, body=[body] if as_array else body)


def json_array(events: list[dict[str, Any]]) -> Reply:
    return Reply(body=events)
