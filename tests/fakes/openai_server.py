"""A local server speaking the OpenAI chat-completions (JSON and SSE), embeddings and image-generation
protocols, scriptable per test.

By default chat echoes the last user message, and embeddings answer ``tests.fakes.vectors``'
deterministic vectors (``dimensions`` long if asked, else ``embed_dims``; base64 if asked) with one
token per word (or per token id). ``script(...)`` queues one-shot behaviours: a status
with a body, a malformed body, a connection reset (before or mid-stream), a slow first byte,
or custom stream chunks. Every received request is kept in ``requests`` for assertions.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_default
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.server import ScriptedServer
from tests.fakes.threaded import BackgroundLoop
from tests.fakes.vectors import fake_tokens, fake_vector


@dataclass
class Scripted:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent raw
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the response head
    reset: bool = False  # close the connection before answering
    reset_after_chunks: int | None = None  # stream: close the connection after N chunks
    chunks: list[Any] | None = None  # stream: raw chunk objects (dicts) or bytes lines
    chunk_delay: float = 0.0
    usage: dict[str, int] | None = None
    text: str | None = None
    reasoning: str | None = None
    finish_reason: str = "stop"


class FakeOpenAI(ScriptedServer):
    """The OpenAI-compatible member of the fake family (``tests/fakes/server.py``): ``add(Reply |
    SSEReply)`` scripts raw replies like every fake; ``script(Scripted)`` scripts the richer
    OpenAI behaviours; unscripted requests are echoed (chat) or embedded (embeddings)."""

    routes = (
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
    )

    def __init__(self) -> None:
        super().__init__()
        self._plans: list[Scripted] = []
        self.embed_dims = 16
        self._loop: BackgroundLoop | None = None

    def serve_in_thread(self) -> FakeOpenAI:
        """Start on an event loop of its own thread (for live servers in blocking tests)."""
        self._loop = BackgroundLoop()
        self._loop.run(self.start())
        return self

    def stop_thread(self) -> None:
        if self._loop is not None:
            self._loop.run(self.stop())
            self._loop.close()
            self._loop = None

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def headers(self) -> list[dict[str, str]]:
        return [r.headers for r in self.requests]

    def script(self, *items: Scripted) -> None:
        self._plans.extend(items)

    def reset(self) -> None:
        self._plans.clear()
        self._script.clear()
        self.embed_dims = 16
        self.requests.clear()

    async def default_reply(self, request: web.Request, body: bytes) -> web.StreamResponse | None:
        multipart = request.content_type == "multipart/form-data"
        data = (
            form_fields(request.headers["Content-Type"], body) if multipart else orjson.loads(body or b"{}")
        )
        plan = self._plans.pop(0) if self._plans else Scripted()
        if plan.delay:
            await asyncio.sleep(plan.delay)
        if plan.reset:
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(0.05)
            return web.Response()
        if plan.status != 200 or plan.body is not None:
            raw = plan.body if isinstance(plan.body, bytes) else orjson.dumps(plan.body)
            return web.Response(
                status=plan.status, body=raw, headers=plan.headers, content_type="application/json"
            )
        if request.path.endswith("/embeddings"):
            return await self._embeddings(request, data, plan)
        if request.path.endswith(("/images/generations", "/images/edits")):
            if isinstance(data.get("image"), tuple):  # an edit: the prompt names what it was given
                filename, image = data["image"]
                data = {**data, "prompt": f"edit {filename} {len(image)} bytes: {data.get('prompt')}"}
            return web.json_response(fake_images(data))
        if request.path.endswith("/audio/speech"):
            return await self._speech(request, data, plan)
        if request.path.endswith(("/audio/transcriptions", "/audio/translations")):
            return web.json_response(fake_transcript(data, translate=request.path.endswith("translations")))
        return await self._chat(request, data, plan)

    async def _chat(self, request: web.Request, body: dict[str, Any], plan: Scripted) -> web.StreamResponse:
        text = plan.text if plan.text is not None else _last_user_text(body)
        usage = plan.usage or {
            "prompt_tokens": 11,
            "completion_tokens": len(text.split()) or 1,
            "total_tokens": 11 + (len(text.split()) or 1),
        }
        if body.get("stream"):
            return await self._stream(request, body, plan, text, usage)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if plan.reasoning:
            message["reasoning_content"] = plan.reasoning
        return web.json_response(
            {
                "id": "chatcmpl-upstream1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {"index": i, "message": message, "finish_reason": plan.finish_reason, "logprobs": None}
                    for i in range(body.get("n") or 1)
                ],
                "usage": usage,
            }
        )

    async def _embeddings(
        self, request: web.Request, body: dict[str, Any], plan: Scripted
    ) -> web.StreamResponse:
        raw_input = body["input"]
        if isinstance(raw_input, str) or (raw_input and isinstance(raw_input[0], int)):
            items = [raw_input]
        else:
            items = list(raw_input)
        dims = body.get("dimensions") or self.embed_dims
        data = []
        for i, item in enumerate(items):
            vec = fake_vector(item, dims)
            embedding: Any = vec
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(fake_tokens(item) for item in items)
        usage = plan.usage or {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response({"object": "list", "data": data, "model": body.get("model"), "usage": usage})

    async def _speech(self, request: web.Request, body: dict[str, Any], plan: Scripted) -> web.StreamResponse:
        """The audio in pieces, as OpenAI streams it (``reset_after_chunks``: cut after N pieces)."""
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await resp.prepare(request)
        for i, piece in enumerate(fake_speech_pieces(body)):
            if plan.reset_after_chunks is not None and i == plan.reset_after_chunks:
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(piece)
            if plan.chunk_delay:
                await asyncio.sleep(plan.chunk_delay)
        await resp.write_eof()
        return resp

    async def _stream(
        self, request: web.Request, body: dict[str, Any], plan: Scripted, text: str, usage: dict[str, int]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunks: list[Any]
        if plan.chunks is not None:
            chunks = plan.chunks
        else:
            base = {
                "id": "chatcmpl-up",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
            }
            chunks = [
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                    ],
                }
            ]
            if plan.reasoning:
                chunks.append(
                    {
                        **base,
                        "choices": [
                            {"index": 0, "delta": {"reasoning": plan.reasoning}, "finish_reason": None}
                        ],
                    }
                )
            for word in text.split(" "):
                chunks.append(
                    {
                        **base,
                        "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}],
                    }
                )
            chunks.append(
                {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": plan.finish_reason}]}
            )
            if (body.get("stream_options") or {}).get("include_usage"):
                chunks.append({**base, "choices": [], "usage": usage})
            chunks.append(b"[DONE]")
        for i, chunk in enumerate(chunks):
            if plan.reset_after_chunks is not None and i == plan.reset_after_chunks:
                assert request.transport is not None
                request.transport.close()
                return resp
            data = chunk if isinstance(chunk, bytes) else orjson.dumps(chunk)
            await resp.write(b"data: " + data + b"\n\n")
            if plan.chunk_delay:
                await asyncio.sleep(plan.chunk_delay)
        await resp.write_eof()
        return resp


def fake_image(prompt: str, index: int) -> bytes:
    """A deterministic stand-in for image bytes (the fake is a protocol fake, not a painter)."""
    return b"\x89PNG\r\n\x1a\n" + f"{index}:{prompt}".encode()[:64]


def form_fields(content_type: str, body: bytes) -> dict[str, Any]:
    """A multipart/form-data body's parts: text fields as strings (repeated ones as lists), files as
    ``(filename, bytes)``."""
    msg = BytesParser(policy=email_default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    out: dict[str, Any] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        value: Any = (filename, payload) if filename else payload.decode()
        if name in out:
            out[name] = [*out[name], value] if isinstance(out[name], list) else [out[name], value]
        else:
            out[name] = value
    return out


def fake_transcript(form: dict[str, Any], *, translate: bool = False) -> dict[str, Any]:
    """A verbose_json answer: the text names the file and its size; the duration is the WAV header's
    (as a real recogniser would hear it), else 7.25 seconds; two segments."""
    filename, data = form["file"]
    duration = 7.25
    if data[:4] == b"RIFF":
        byte_rate = struct.unpack_from("<I", data, 28)[0]
        duration = (len(data) - 44) / byte_rate
    text = f"{'translated' if translate else 'heard'} {filename} {len(data)} bytes"
    half = round(duration / 2, 3)
    return {
        "task": "translate" if translate else "transcribe",
        "language": "english",
        "duration": duration,
        "text": text,
        "segments": [
            {"id": 0, "start": 0.0, "end": half, "text": f" {text.split(' ', 1)[0]}"},
            {"id": 1, "start": half, "end": duration, "text": f" {text.split(' ', 1)[1]}"},
        ],
    }


def fake_speech_pieces(body: dict[str, Any]) -> list[bytes]:
    """Deterministic stand-in audio for a speech request, in three pieces."""
    head = f"ID3:{body.get('voice')}:{body.get('response_format')}:".encode()
    return [head, str(body.get("input", "")).encode(), b":end"]


def fake_images(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``ImagesResponse`` for ``body``: ``n`` images, base64 unless ``url`` is asked for."""
    prompt = str(body.get("prompt", ""))
    data = []
    for i in range(int(body.get("n") or 1)):
        if body.get("response_format") == "url":
            data.append({"url": f"https://images.example/{i}.png", "revised_prompt": prompt})
        else:
            data.append({"b64_json": base64.b64encode(fake_image(prompt, i)).decode()})
    return {"created": 1_700_000_000, "data": data, "output_format": body.get("output_format", "png")}


def _last_user_text(body: dict[str, Any]) -> str:
    """The echo; tolerant of anything the gateway forwards (the fuzz test sends odd, valid bodies)."""
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content or "hello"
            if isinstance(content, list):
                text = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                return text or "hello"
    return "hello"
