"""Native adapter for the Gemini API (``generativelanguage.googleapis.com/v1beta``), ``type: gemini``.

``POST {base}/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``, key in the
``x-goog-api-key`` header. The mapping lives in ``gemini_convert`` (request) and ``gemini_response``;
this module does the I/O: the call, the stream reader (SSE, with raw JSON error objects tolerated
mid-stream and a plain JSON array body accepted), and the translation of upstream errors.

Thinking is always requested with ``includeThoughts: true``; thought-summary parts become
``reasoning_content``. ``maxOutputTokens`` is the effective cap and includes thinking, so with a low
cap a reasoning model may spend it all on thoughts: the answer is then ``content: ""`` with
``finish_reason: "length"`` and ``reasoning_tokens > 0`` -- reported as such, never as an error.

Embeddings: ``:embedContent`` for one input, ``:batchEmbedContents`` (at most ``embed_batch_size``
inputs per call, default 100, the calls made concurrently) for several; ``dimensions`` becomes
``outputDimensionality``, route option ``task_type`` becomes ``taskType``. The Gemini API reports no
token count for embeddings, so unless an answer carries ``usageMetadata.promptTokenCount`` the same
texts are counted by ``:countTokens`` alongside (``embed_count_tokens: false`` turns that off; the
gateway then charges its own estimate). Token-id inputs are refused: Gemini takes text only.

Media: images (Imagen's ``:predict`` and native image output, ``gemini_images``), speech
(``gemini_speech``) and transcription (``gemini_transcribe``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import (
    InvalidRequestError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
)
from modelgate.providers import gemini_images, gemini_speech, gemini_transcribe, vectors
from modelgate.providers.base import (
    AdapterDefaults,
    Chunk,
    Completion,
    EmbedCall,
    Embeddings,
    ImageCall,
    Images,
    ProviderCall,
    ProviderContext,
    SpeechCall,
    Transcript,
    TranscriptionCall,
)
from modelgate.providers.gemini_convert import RPC_STATUS, build_request
from modelgate.providers.gemini_response import StreamState, parse_response
from modelgate.providers.http import HTTPUpstream, UpstreamErrorInfo, upstream_status_error
from modelgate.providers.httpclient import Response
from modelgate.providers.sse import decode_line
from modelgate.sanitize import db_text

_MAX_RAW_JSON = 1024 * 1024


class GeminiProvider(AdapterDefaults):
    supports_tools = True
    supports_json_schema = True
    supports_streaming = True
    supports_vision = True
    supports_embeddings = True  # embed(): providers/base.py EmbeddingProvider
    forwards_unknown_fields = False
    drain_on_disconnect = True  # keep reading an abandoned stream: usage comes with the last event
    dialects: frozenset[str] = frozenset()

    def __init__(self, name: str, config: ProviderConfig, context: ProviderContext) -> None:
        self.name = name
        self._http = self._upstream(name, config, context)
        self._embed_batch = int(config.options.get("embed_batch_size", 100))
        if not 1 <= self._embed_batch <= 10_000:
            raise ValueError(f"provider {name}: options.embed_batch_size must be within 1..10000")
        self._count_tokens = bool(config.options.get("embed_count_tokens", True))

    def _upstream(self, name: str, config: ProviderConfig, context: ProviderContext) -> HTTPUpstream:
        """The pooled client with this upstream's credentials (the key in ``x-goog-api-key``)."""
        headers = {"User-Agent": context.user_agent}
        if config.api_key:
            headers["x-goog-api-key"] = config.api_key
        return HTTPUpstream(
            name, config, default_headers=headers, status_hint=gemini_status_hint, environ=context.environ
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    @staticmethod
    def _path(call: ProviderCall | EmbedCall, method: str) -> str:
        return f"/models/{quote(call.upstream_model, safe='-._~/')}:{method}"

    # ---- media: images (Imagen, native output), speech, transcription (providers/gemini_*.py) ------

    async def generate_images(self, call: ImageCall) -> Images:
        model = quote(call.upstream_model, safe="-._~/")
        if gemini_images.uses_predict(call):
            return await gemini_images.generate(self._http, self.name, f"/models/{model}:predict", call)
        path = f"/models/{model}:generateContent"
        return await gemini_images.generate_native(self._http, self.name, path, call)

    def speech(self, call: SpeechCall) -> AsyncIterator[bytes]:
        """Gemini speech generation (``providers/gemini_speech.py``)."""
        path = f"/models/{quote(call.upstream_model, safe='-._~/')}:generateContent"
        return gemini_speech.speech(self._http, self.name, path, call)

    async def transcribe(self, call: TranscriptionCall) -> Transcript:
        """Gemini audio understanding (``providers/gemini_transcribe.py``)."""
        path = f"/models/{quote(call.upstream_model, safe='-._~/')}:generateContent"
        return await gemini_transcribe.transcribe(self._http, self.name, path, call)

    # ---- embeddings ------------------------------------------------------------------------------

    async def embed(self, call: EmbedCall) -> Embeddings:
        texts = [t for t in call.inputs if isinstance(t, str)]
        if len(texts) != len(call.inputs):
            raise InvalidRequestError(
                f"input: {call.model.id} takes text only; token-id arrays are not supported",
                param="input",
            )
        counting = asyncio.ensure_future(self._count(call, texts)) if self._count_tokens else None
        try:
            size = self._embed_batch
            batches = [texts[i : i + size] for i in range(0, len(texts), size)]
            parts = await asyncio.gather(*(self._embed_batch_call(call, b) for b in batches))
        except BaseException:
            if counting is not None:
                counting.cancel()
                with contextlib.suppress(BaseException):
                    await counting
            raise
        out = [v for part, _ in parts for v in part]
        reported = [tokens for _, tokens in parts]
        bound = vectors.token_bound(call)
        if all(t is not None for t in reported):
            if counting is not None:
                counting.cancel()
            total = sum(t for t in reported if t is not None)
            return Embeddings(vectors=out, prompt_tokens=vectors.prompt_tokens(self.name, total, bound=bound))
        counted = await counting if counting is not None else None
        return Embeddings(vectors=out, prompt_tokens=vectors.prompt_tokens(self.name, counted, bound=bound))

    def _embed_request(self, call: EmbedCall, text: str) -> dict[str, Any]:
        req: dict[str, Any] = {
            "model": f"models/{call.upstream_model}",
            "content": {"parts": [{"text": text}]},
        }
        if call.dimensions is not None:
            req["outputDimensionality"] = call.dimensions
        task = call.extra.get("task_type")
        if isinstance(task, str) and task:
            req["taskType"] = task
        return req

    async def _embed_batch_call(
        self, call: EmbedCall, texts: list[str]
    ) -> tuple[list[list[float]], int | None]:
        single = len(texts) == 1
        if single:
            path, body = self._path(call, "embedContent"), self._embed_request(call, texts[0])
        else:
            reqs = [self._embed_request(call, t) for t in texts]
            path, body = self._path(call, "batchEmbedContents"), {"requests": reqs}
        async with self._http.post(path, body) as resp:
            raw = await resp.read()
        parsed: tuple[list[list[float]], int | None] = await vectors.off_loop(
            len(raw), self._parse_embed, raw, call, len(texts), single
        )
        return parsed

    def _parse_embed(
        self, raw: bytes, call: EmbedCall, count: int, single: bool
    ) -> tuple[list[list[float]], int | None]:
        data = vectors.loads(self.name, raw)
        if not isinstance(data, dict):
            raise UpstreamProtocolError(f"upstream {self.name} answered a bad embedding", provider=self.name)
        if "error" in data:
            raise self._error(data["error"])
        items = [data.get("embedding")] if single else data.get("embeddings")
        if not isinstance(items, list) or len(items) != count:
            got = len(items) if isinstance(items, list) else "no"
            raise UpstreamProtocolError(
                f"upstream {self.name} answered {got} embeddings for {count} inputs", provider=self.name
            )
        dims = vectors.expected_dimensions(call)
        out = []
        for item in items:
            values = item.get("values") if isinstance(item, dict) else None
            out.append(vectors.vector(self.name, values, dims=dims))
        usage = data.get("usageMetadata")
        tokens = usage.get("promptTokenCount") if isinstance(usage, dict) else None
        if tokens is None:
            return out, None
        return out, vectors.prompt_tokens(self.name, tokens, bound=vectors.token_bound(call))

    async def _count(self, call: EmbedCall, texts: list[str]) -> int | None:
        """``:countTokens`` over the texts; None when the upstream cannot say (never fails the call)."""
        body = {"contents": [{"parts": [{"text": t}]} for t in texts]}
        try:
            data = await self._http.post_json(self._path(call, "countTokens"), body)
        except UpstreamError:
            return None
        total = data.get("totalTokens") if isinstance(data, dict) else None
        return total if isinstance(total, int) and not isinstance(total, bool) else None

    async def complete(self, call: ProviderCall) -> Completion:
        data = await self._http.post_json(self._path(call, "generateContent"), build_request(call))
        if isinstance(data, dict) and "error" in data:
            raise self._error(data["error"])
        choices, usage = parse_response(data, self.name)
        upstream_id = data.get("responseId")
        return Completion(
            choices=choices,
            usage=usage,
            upstream_id=upstream_id if isinstance(upstream_id, str) else None,
        )

    async def stream(self, call: ProviderCall) -> AsyncIterator[Chunk]:
        state = StreamState(provider=self.name)
        path = self._path(call, "streamGenerateContent") + "?alt=sse"
        async with self._http.post(path, build_request(call)) as resp:
            async for event in self._events(resp):
                if "error" in event:
                    raise self._error(event["error"])
                deltas = state.feed(event)
                if deltas:
                    yield Chunk(choices=deltas)
                if state.usage is not None and "usageMetadata" in event:
                    call.on_usage(state.usage)  # the counts so far, with the chunk they count: a cut stream's
        if not state.finished:
            raise UpstreamConnectionError(
                f"upstream {self.name} ended the stream before a finish reason", provider=self.name
            )
        if state.usage is not None:
            yield Chunk(choices=[], usage=state.usage)

    async def _events(self, resp: Response) -> AsyncIterator[dict[str, Any]]:
        """Every JSON object of the body: SSE ``data:`` events, or raw JSON (an error, an array)."""
        if resp.content_type == "application/json":
            for obj in self._objects(self._loads(await resp.read())):
                yield obj
            return
        data: list[str] = []
        raw: list[str] = []
        async for raw_line in resp.lines():
            line = decode_line(raw_line, self.name)
            if raw:  # inside a raw (non-SSE) JSON document: collect until it parses
                raw.append(line)
                parsed = self._try_raw(raw)
                if parsed is not None:
                    raw = []
                    for obj in self._objects(parsed):
                        yield obj
                continue
            if not line:
                if data:
                    for obj in self._objects(self._loads("\n".join(data).encode())):
                        yield obj
                    data = []
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif line.startswith((":", "event:", "id:", "retry:")):
                continue
            else:
                raw.append(line)
                parsed = self._try_raw(raw)
                if parsed is not None:
                    raw = []
                    for obj in self._objects(parsed):
                        yield obj
        if data:
            for obj in self._objects(self._loads("\n".join(data).encode())):
                yield obj
        if raw:
            self._loads("\n".join(raw).encode())  # raises UpstreamProtocolError

    def _try_raw(self, lines: list[str]) -> Any:
        text = "\n".join(lines)
        if len(text) > _MAX_RAW_JSON:
            raise UpstreamProtocolError(
                f"upstream {self.name} sent an oversized raw body", provider=self.name
            )
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return None

    def _loads(self, raw: bytes) -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"upstream {self.name} sent a stream event that is not JSON", provider=self.name
            ) from exc

    def _objects(self, value: Any) -> list[dict[str, Any]]:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in items):
            raise UpstreamProtocolError(f"upstream {self.name} sent a bad stream event", provider=self.name)
        return items

    def _error(self, err: Any) -> UpstreamStatusError:
        """A Gemini ``{"error": {code, message, status}}`` object as the matching status error."""
        if not isinstance(err, dict):
            err = {"message": str(err)}
        code = err.get("code")
        status = (
            code
            if isinstance(code, int) and 400 <= code <= 599
            else RPC_STATUS.get(str(err.get("status")), 502)
        )
        message = err.get("message") or err.get("status") or None
        return upstream_status_error(self.name, status, db_text(message, 500))


def create(name: str, config: ProviderConfig, context: ProviderContext) -> GeminiProvider:
    return GeminiProvider(name, config, context)


def gemini_status_hint(status: int, body: Any) -> UpstreamErrorInfo | None:
    """Gemini reports a bad API key as 400 ``API_KEY_INVALID`` (our operator's fault, not the
    client's: treat it as 401 → 502) and a 429's wait in ``RetryInfo.retryDelay`` (``"17s"``)."""
    err = body[0] if isinstance(body, list) and body else body
    err = err.get("error") if isinstance(err, dict) else None
    if not isinstance(err, dict):
        return None
    retry_after: float | None = None
    for detail in err.get("details") or []:
        if not isinstance(detail, dict):
            continue
        if detail.get("reason") == "API_KEY_INVALID":
            return UpstreamErrorInfo(status=401, retry_after=None)
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                retry_after = float(delay[:-1])
            except ValueError:
                retry_after = None
    return UpstreamErrorInfo(status=status, retry_after=retry_after) if retry_after is not None else None
