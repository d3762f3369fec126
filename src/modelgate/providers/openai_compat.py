"""Adapter for any OpenAI-compatible server: vLLM, Ollama, llama.cpp server, OpenAI itself.

Chat: the request is passed through (with the upstream model name and the effective token cap),
usage is always asked for on streams, and ``reasoning_content`` / ``reasoning`` are surfaced as
``reasoning_content``. Stream chunks are re-emitted one by one as they arrive.

Responses: with ``options: {responses: true}`` the provider also speaks OpenAI's Responses API
natively (``dialects``): the Responses door passes its requests through to ``POST /responses``
unchanged (``providers/openai_responses.py``), and its compactions to ``POST /responses/compact``;
its input-token counts are the upstream's ``POST /responses/input_tokens`` where it answers.

Embeddings: ``POST /embeddings`` with all inputs in one call (texts or token ids, ``dimensions``
when asked); the answer is checked by ``providers.vectors`` (one finite vector of the expected
length per input, a bounded token count). Option ``embedding_encoding: base64`` asks the upstream
for base64 vectors (smaller and faster to parse; OpenAI, vLLM and llama.cpp server support it).

Images: ``POST /images/generations`` (``providers/openai_images.py``), for ``type: image`` models.
Speech: ``POST /audio/speech`` (``providers/openai_audio.py``), for ``type: speech`` models;
transcriptions and translations for ``type: transcription`` models, in the same module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import UpstreamProtocolError
from modelgate.providers import openai_audio, openai_images, openai_responses, vectors
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
    RawEvent,
    RawReply,
    SpeechCall,
    Transcript,
    TranscriptionCall,
    Usage,
)
from modelgate.providers.checks import FINISH_REASONS, finish_reason, token_count
from modelgate.providers.http import HTTPUpstream, upstream_status_error
from modelgate.providers.sse import SSEDataParser, decode_line, loads_event
from modelgate.sanitize import db_text

# Our own request fields that no upstream should see.
_DONE = Chunk(choices=[])  # the ``[DONE]`` event (compared by identity, never yielded)
_GATEWAY_ONLY = {"provider", "thinking", "model", "max_tokens", "max_completion_tokens", "stream_options"}


class OpenAICompatProvider(AdapterDefaults):
    supports_tools = True
    supports_json_schema = True
    supports_streaming = True
    supports_vision = True
    supports_embeddings = True  # embed(): providers/base.py EmbeddingProvider
    forwards_unknown_fields = True  # a chat request's unknown top-level fields go up as sent
    drain_on_disconnect = True

    def __init__(self, name: str, config: ProviderConfig, context: ProviderContext) -> None:
        self.name = name
        self._http = self._upstream(name, config, context)
        self._token_field = str(config.options.get("max_tokens_field", "")) or None
        encoding = str(config.options.get("embedding_encoding", "float"))
        if encoding not in ("float", "base64"):
            raise ValueError(f"provider {name}: options.embedding_encoding must be float or base64")
        self._embedding_encoding = encoding
        responses = config.options.get("responses", False)
        if not isinstance(responses, bool):
            raise ValueError(f"provider {name}: options.responses must be true or false")
        self.dialects = (
            frozenset({openai_responses.DIALECT, openai_responses.COMPACT}) if responses else frozenset()
        )

    def _upstream(self, name: str, config: ProviderConfig, context: ProviderContext) -> HTTPUpstream:
        """The pooled client with this upstream's credentials (``Authorization: Bearer``)."""
        headers = {"User-Agent": context.user_agent}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        return HTTPUpstream(name, config, default_headers=headers, environ=context.environ)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _path(self, endpoint: str, model: str) -> str:
        """The request path of ``endpoint`` (``chat/completions``, ``embeddings``, ``responses``) for
        the upstream ``model`` (Azure OpenAI puts its deployment and API version here instead)."""
        return f"/{endpoint}"

    def _body(self, call: ProviderCall, *, stream: bool) -> dict[str, Any]:
        req = call.request
        body = req.model_dump(exclude_none=True, exclude=_GATEWAY_ONLY, by_alias=True)
        body["model"] = call.upstream_model
        field = self._token_field or (
            "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
        )
        body[field] = call.max_tokens
        body["stream"] = stream
        if stream:
            body["stream_options"] = {"include_usage": True}
        body.update(call.extra.get("body", {}) if isinstance(call.extra.get("body"), dict) else {})
        return body

    async def complete(self, call: ProviderCall) -> Completion:
        data = await self._http.post_json(
            self._path("chat/completions", call.upstream_model),
            self._body(call, stream=False),
            headers=call.headers or None,
        )
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamProtocolError(
                f"upstream {self.name} answered JSON without choices", provider=self.name
            )
        choices = [_normalize_choice(c, i) for i, c in enumerate(data["choices"])]
        fingerprint = data.get("system_fingerprint")
        return Completion(
            choices=choices,
            usage=_usage(data.get("usage"), self.name),
            upstream_id=data.get("id") if isinstance(data.get("id"), str) else None,
            system_fingerprint=db_text(fingerprint, 200) if isinstance(fingerprint, str) else None,
        )

    async def stream(self, call: ProviderCall) -> AsyncIterator[Chunk]:
        path = self._path("chat/completions", call.upstream_model)
        async with self._http.post(path, self._body(call, stream=True), headers=call.headers or None) as resp:
            # The SSE parser fed here, not through iter_sse: one generator resumption per chunk fewer;
            # events' data as bytes, parsed by orjson without a text decoding first.
            parser = SSEDataParser()
            while (data := await resp.chunk()) is not None:
                for event in parser.feed(data):
                    chunk = self._chunk(event)
                    if chunk is _DONE:
                        return
                    if chunk is not None:
                        yield chunk
            for event in parser.end():
                chunk = self._chunk(event)
                if chunk is _DONE:
                    return
                if chunk is not None:
                    yield chunk

    def _chunk(self, data: bytes) -> Chunk | None:
        """One streamed event: its chunk, None when it carries nothing, ``_DONE`` at ``[DONE]``."""
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            if data.strip() == b"[DONE]":
                return _DONE
            # invalid UTF-8, then invalid JSON: the upstream's error
            obj = loads_event(self.name, decode_line(data, self.name))
        if obj.__class__ is dict and "error" not in obj:
            choices = obj.get("choices")
            if choices.__class__ is list and len(choices) == 1 and not obj.get("usage"):
                # The common chunk, inline: one choice that needs no change (_normalize_delta's fast
                # path), passed on in the list it came in.
                raw = choices[0]
                if raw.__class__ is dict:
                    index, reason, delta = raw.get("index"), raw.get("finish_reason"), raw.get("delta")
                    if (
                        index.__class__ is int
                        and 0 <= index < 1024
                        and (reason is None or (reason.__class__ is str and reason in FINISH_REASONS))
                        and delta.__class__ is dict
                        and "reasoning" not in delta
                    ):
                        return Chunk(choices, None)
        elif obj.__class__ is not dict:
            raise UpstreamProtocolError(f"upstream {self.name} sent a bad chunk", provider=self.name)
        else:
            err = obj["error"]
            msg = err.get("message") if isinstance(err, dict) else err
            code = err.get("code") if isinstance(err, dict) else None
            status = code if isinstance(code, int) and 400 <= code <= 599 else 502
            raise upstream_status_error(
                self.name, status, db_text(msg, 500), during="failed mid-stream with status"
            )
        choices = obj.get("choices") or []
        if not isinstance(choices, list):
            raise UpstreamProtocolError(f"upstream {self.name} sent a bad chunk", provider=self.name)
        if len(choices) == 1:  # the common chunk: no list comprehension's frame
            deltas = [_normalize_delta(choices[0], 0)]
        else:
            deltas = [_normalize_delta(c, i) for i, c in enumerate(choices)]
        usage = _usage(obj["usage"], self.name) if obj.get("usage") else None
        return Chunk(choices=deltas, usage=usage) if deltas or usage is not None else None

    # ---- native pass-through (the Responses door on a route that declares it) ---------------------

    async def passthrough(self, dialect: str, body: bytes, headers: Mapping[str, str]) -> RawReply:
        if dialect == openai_responses.COMPACT:
            path = self._path("responses/compact", "")
            kind = "response.compaction"
            return await openai_responses.passthrough(self._http, body, headers, path=path, kind=kind)
        path = self._path("responses", "")
        return await openai_responses.passthrough(self._http, body, headers, path=path)

    def passthrough_stream(
        self, dialect: str, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[RawEvent]:
        path = self._path("responses", "")
        return openai_responses.passthrough_stream(self._http, body, headers, path=path)

    async def count_tokens(self, dialect: str, body: bytes, headers: Mapping[str, str]) -> int | None:
        """The upstream's ``/responses/input_tokens`` for a Responses body (None: it has none)."""
        if dialect != openai_responses.DIALECT or dialect not in self.dialects:
            return None
        path = self._path("responses/input_tokens", "")
        return await openai_responses.input_tokens(self._http, body, headers, path=path)

    async def generate_images(self, call: ImageCall) -> Images:
        """``POST /images/generations``, or ``/images/edits`` for an edit (``providers/openai_images.py``)."""
        if call.image is not None:
            path = self._path("images/edits", call.upstream_model)
            return await openai_images.edit(self._http, self.name, path, call)
        path = self._path("images/generations", call.upstream_model)
        return await openai_images.generate(self._http, self.name, path, call)

    def speech(self, call: SpeechCall) -> AsyncIterator[bytes]:
        """``POST /audio/speech``, the audio as it arrives (``providers/openai_audio.py``)."""
        path = self._path("audio/speech", call.upstream_model)
        return openai_audio.speech(self._http, self.name, path, call)

    async def transcribe(self, call: TranscriptionCall) -> Transcript:
        """``POST /audio/transcriptions`` or ``/audio/translations`` (``providers/openai_audio.py``)."""
        endpoint = "audio/translations" if call.translate else "audio/transcriptions"
        path = self._path(endpoint, call.upstream_model)
        return await openai_audio.transcribe(self._http, self.name, path, call)

    async def embed(self, call: EmbedCall) -> Embeddings:
        body: dict[str, Any] = {
            "model": call.upstream_model,
            "input": call.inputs,
            "encoding_format": self._embedding_encoding,
        }
        if call.dimensions is not None:
            body["dimensions"] = call.dimensions
        extra = call.extra.get("body")
        body.update(extra if isinstance(extra, dict) else {})
        async with self._http.post(self._path("embeddings", call.upstream_model), body) as resp:
            raw = await resp.read()
        parsed: Embeddings = await vectors.off_loop(len(raw), self._parse_embeddings, raw, call)
        return parsed

    def _parse_embeddings(self, raw: bytes, call: EmbedCall) -> Embeddings:
        data = vectors.loads(self.name, raw)
        items = data.get("data") if isinstance(data, dict) else None
        count = len(call.inputs)
        if not isinstance(items, list) or len(items) != count:
            got = len(items) if isinstance(items, list) else "no"
            raise UpstreamProtocolError(
                f"upstream {self.name} answered {got} embeddings for {count} inputs", provider=self.name
            )
        dims = vectors.expected_dimensions(call)
        out: list[list[float] | None] = [None] * count
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                raise UpstreamProtocolError(f"upstream {self.name} sent a bad embedding", provider=self.name)
            index = item.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
                raise UpstreamProtocolError(
                    f"upstream {self.name} sent an embedding index out of range", provider=self.name
                )
            if out[index] is not None:
                raise UpstreamProtocolError(
                    f"upstream {self.name} sent embedding {index} twice", provider=self.name
                )
            out[index] = vectors.vector(self.name, item.get("embedding"), dims=dims)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        tokens = vectors.prompt_tokens(self.name, usage.get("prompt_tokens"), bound=vectors.token_bound(call))
        return Embeddings(vectors=[v for v in out if v is not None], prompt_tokens=tokens)


def _index(raw: Any, default: int) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 1024 else default


def _normalize_choice(choice: Any, index: int) -> dict[str, Any]:
    if not isinstance(choice, dict):
        choice = {}
    message = choice.get("message")
    msg = dict(message) if isinstance(message, dict) else {}
    msg.setdefault("role", "assistant")
    msg.setdefault("content", None)
    msg.setdefault("refusal", None)
    reasoning = msg.pop("reasoning", None)
    if reasoning and not msg.get("reasoning_content"):
        msg["reasoning_content"] = reasoning
    if not msg.get("tool_calls"):
        msg.pop("tool_calls", None)
    return {
        "index": _index(choice.get("index"), index),
        "message": msg,
        "finish_reason": finish_reason(choice.get("finish_reason")),
        "logprobs": choice.get("logprobs"),
    }


def _normalize_delta(raw: Any, position: int) -> dict[str, Any]:
    if raw.__class__ is dict:  # the common chunk first: nothing to change, returned as it came
        index, reason, delta = raw.get("index"), raw.get("finish_reason"), raw.get("delta")
        if (
            index.__class__ is int
            and 0 <= index < 1024
            and (reason is None or (reason.__class__ is str and reason in FINISH_REASONS))
            and delta.__class__ is dict
            and "reasoning" not in delta
        ):
            return raw
    choice: dict[str, Any] = raw if isinstance(raw, dict) else {}
    index = _index(choice.get("index"), position)
    reason = finish_reason(choice.get("finish_reason"), default=None)
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        delta = {}
        choice = {**choice, "delta": delta}
    if index != choice.get("index") or reason != choice.get("finish_reason"):
        choice = {**choice, "index": index, "finish_reason": reason}
    if "reasoning" in delta:
        delta = dict(delta)
        reasoning = delta.pop("reasoning")
        if reasoning and not delta.get("reasoning_content"):
            delta["reasoning_content"] = reasoning
        choice = {**choice, "delta": delta}
    return choice


def _usage(raw: Any, name: str) -> Usage:
    if raw is None:
        return Usage()
    if not isinstance(raw, dict):
        raise UpstreamProtocolError(f"upstream {name} reported usage that is not an object", provider=name)
    details = raw.get("completion_tokens_details")
    prompt_details = raw.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}

    def count(obj: dict[str, Any], field: str) -> int:
        return token_count(obj.get(field), provider=name, field=field)

    return Usage(
        prompt_tokens=count(raw, "prompt_tokens"),
        completion_tokens=count(raw, "completion_tokens"),
        reasoning_tokens=count(details, "reasoning_tokens"),
        cached_tokens=count(prompt_details, "cached_tokens"),
        # audio and image details are often absent or zero: read only when present
        audio_input_tokens=count(prompt_details, "audio_tokens") if prompt_details.get("audio_tokens") else 0,
        image_input_tokens=count(prompt_details, "image_tokens") if prompt_details.get("image_tokens") else 0,
        audio_output_tokens=count(details, "audio_tokens") if details.get("audio_tokens") else 0,
    )


def create(name: str, config: ProviderConfig, context: ProviderContext) -> OpenAICompatProvider:
    return OpenAICompatProvider(name, config, context)
