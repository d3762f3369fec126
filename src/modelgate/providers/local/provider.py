"""``LocalProvider``: the models shipped inside PyPI packages, run in supervised worker processes.

Chat: SmolLM2-135M-Instruct on the batching engine (``engine.py``). Embeddings (``embed``, the
``EmbeddingProvider`` Protocol): all-MiniLM-L6-v2 on onnxruntime (``embedder.py``). Transcription
(``transcribe``, the ``TranscriptionProvider`` Protocol): PocketSphinx's US-English model on WAV
files (``recognizer.py``). Each runs in a
worker process of its own (``supervisor.py``, ``worker.py``), started on first use: a native crash
fails the calls in flight with a 502 and the worker restarts; the gateway keeps serving.
A client's JSON schema is checked against ``bounds.py`` before it becomes a grammar.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import InvalidRequestError, ProviderNotConfiguredError
from modelgate.providers.base import (
    AdapterDefaults,
    Chunk,
    Completion,
    EmbedCall,
    Embeddings,
    ProviderCall,
    ProviderContext,
    Transcript,
    TranscriptionCall,
)
from modelgate.providers.local import recognizer
from modelgate.providers.local.client import EmbedderClient, EngineClient, GenCall, RecognizerClient
from modelgate.providers.local.embedder import DIMENSIONS, MODEL_ID, EmbedOptions
from modelgate.providers.local.request import EngineStats
from modelgate.providers.local.runtime import RuntimeOptions, default_model_path, default_threads
from modelgate.providers.local.sampling import SamplingParams, format_spec
from modelgate.wire.chat import ChatRequest, content_text


class LocalOptions(BaseModel):
    """``providers.<name>.options`` of a ``type: local`` provider (strict: typos are errors)."""

    model_config = ConfigDict(extra="forbid")

    model_path: Path | None = None
    n_ctx: int = Field(default=8192, ge=256)
    n_batch: int = Field(default=512, ge=32)
    n_threads: int = Field(default_factory=default_threads, ge=1)
    parallel: int = Field(default=16, ge=1, le=256)
    max_queue: int = Field(default=64, ge=0)
    extra_buffer_types: bool = False  # llama.cpp AMX / repacked weights (see RuntimeOptions)
    # The embedding model (all-MiniLM-L6-v2, onnxruntime): its file, threads and batch size.
    embed_model_path: Path | None = None
    embed_threads: int = Field(default_factory=default_threads, ge=1)
    embed_batch: int = Field(default=32, ge=1, le=1024)
    # The speech recogniser (PocketSphinx): its model folder and the files that may wait for it.
    asr_model_dir: Path | None = None
    asr_max_queue: int = Field(default=16, ge=0)


class LocalProvider(AdapterDefaults):
    supports_tools = False
    supports_json_schema = True
    supports_streaming = True
    supports_vision = True  # as before the flag was declared: image parts are dropped (text only)
    supports_embeddings = True
    forwards_unknown_fields = False
    dialects: frozenset[str] = frozenset()
    drain_on_disconnect = False  # a closed stream stops at once; ``call.on_usage`` is told exact counts

    def __init__(self, name: str, options: LocalOptions) -> None:
        self.name = name
        self.engine = EngineClient(
            RuntimeOptions(
                model_path=options.model_path,
                n_ctx=options.n_ctx,
                n_batch=max(options.n_batch, options.parallel),
                n_seq_max=options.parallel,
                n_threads=options.n_threads,
                extra_buffer_types=options.extra_buffer_types,
            ),
            max_queue=options.max_queue,
            provider=name,
        )
        self.embedder = EmbedderClient(
            EmbedOptions(
                model_path=options.embed_model_path,
                n_threads=options.embed_threads,
                batch=options.embed_batch,
            ),
            provider=name,
        )
        self.recognizer = RecognizerClient(
            recognizer.RecognizeOptions(model_dir=options.asr_model_dir, max_queue=options.asr_max_queue),
            provider=name,
        )

    @property
    def model_path(self) -> Path:
        """The GGUF this provider runs (raises ProviderNotConfiguredError if there is none)."""
        configured: Path | None = self.engine.opts.model_path
        return configured if configured is not None else default_model_path()

    async def start(self) -> None:
        """Start the chat worker and load its model (also done lazily by the first call)."""
        await asyncio.wrap_future(self.engine.start())

    def stats(self) -> EngineStats:
        return self.engine.stats

    def ready(self) -> bool:
        """``/ready``: not while the chat worker loads, restarts after a crash, or cannot load."""
        return self.engine.worker.ready()

    def queue_depth(self) -> int | None:
        return self.engine.stats.waiting

    async def aclose(self) -> None:
        await asyncio.to_thread(self.engine.shutdown)
        await asyncio.to_thread(self.embedder.shutdown)
        await asyncio.to_thread(self.recognizer.shutdown)

    async def transcribe(self, call: TranscriptionCall) -> Transcript:
        """A WAV file's words, recognised on the recognition worker (US English only)."""
        if call.upstream_model != recognizer.MODEL_ID:
            raise ProviderNotConfiguredError(
                f"provider {self.name}: no transcription model {call.upstream_model!r}"
                f" (it has {recognizer.MODEL_ID!r})"
            )
        if call.translate:
            raise InvalidRequestError(f"{call.model.id} does not translate", param="model")
        language = str(call.options.get("language") or "en").lower()
        if language.split("-")[0] != "en":
            raise InvalidRequestError(f"language: {call.model.id} recognises English only", param="language")
        text, seconds, segments, words = await self.recognizer.recognize(call.file)
        return Transcript(
            text=text,
            duration=round(seconds, 3),
            language="english",
            segments=[{"id": i, "start": a, "end": b, "text": t} for i, (a, b, t) in enumerate(segments)],
            words=[{"word": w, "start": a, "end": b} for w, a, b in words]
            if "word" in call.options.get("timestamp_granularities", ())
            else None,
        )

    async def embed(self, call: EmbedCall) -> Embeddings:
        """All inputs embedded together on the embedding worker (never on the event loop)."""
        if call.upstream_model != MODEL_ID:
            raise ProviderNotConfiguredError(
                f"provider {self.name}: no embedding model {call.upstream_model!r} (it has {MODEL_ID!r})"
            )
        if call.dimensions is not None and call.dimensions != DIMENSIONS:
            raise InvalidRequestError(
                f"dimensions: {MODEL_ID} returns {DIMENSIONS}-dimensional vectors", param="dimensions"
            )
        vectors, tokens = await self.embedder.embed(call.inputs)
        return Embeddings(vectors=vectors, prompt_tokens=tokens)

    async def complete(self, call: ProviderCall) -> Completion:
        req = await self._submit(call)
        texts: list[list[str]] = [[] for _ in range(req.n)]
        finish: list[str] = ["stop"] * req.n
        try:
            async for ev in req.events():
                for index, text, reason in ev.choices:
                    texts[index].append(text)
                    if reason is not None:
                        finish[index] = reason
        finally:
            req.cancel()
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": "".join(texts[i]), "refusal": None},
                "finish_reason": finish[i],
                "logprobs": None,
            }
            for i in range(req.n)
        ]
        return Completion(choices=choices, usage=req.usage())

    async def stream(self, call: ProviderCall) -> AsyncIterator[Chunk]:
        req = await self._submit(call)
        started: set[int] = set()
        try:
            async for ev in req.events():
                deltas: list[dict[str, Any]] = []
                for index, text, reason in ev.choices:
                    delta: dict[str, Any] = {}
                    if index not in started:
                        started.add(index)
                        delta["role"] = "assistant"
                    if text or "role" in delta:
                        delta["content"] = text
                    deltas.append({"index": index, "delta": delta, "finish_reason": reason, "logprobs": None})
                if deltas:
                    yield Chunk(choices=deltas)
            yield Chunk(choices=[], usage=req.usage())
        finally:
            req.cancel()  # consumer gone (or done): the worker frees the sequences next step

    async def _submit(self, call: ProviderCall) -> GenCall:
        request = call.request
        _check_supported(request)
        params = SamplingParams(
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            top_k=request.top_k or 0,
            frequency_penalty=request.frequency_penalty or 0.0,
            presence_penalty=request.presence_penalty or 0.0,
            seed=request.seed,
            format=format_spec(request.response_format),
        )
        await self.start()
        return self.engine.submit(
            messages=_messages(request),
            params=params,
            n=request.n or 1,
            max_tokens=max(1, call.max_tokens),
            stops=tuple(request.stop_list),
            on_usage=call.on_usage,
        )


def _check_supported(request: ChatRequest) -> None:
    if request.tools and request.tool_choice != "none":
        raise InvalidRequestError("tools: the local model does not support tool calls", param="tools")
    if request.logprobs:
        raise InvalidRequestError("logprobs: not supported by the local model", param="logprobs")


def _messages(request: ChatRequest) -> list[dict[str, str]]:
    out = []
    for msg in request.messages:
        role = "system" if msg.role == "developer" else msg.role
        out.append({"role": role, "content": content_text(msg.content)})
    return out


def create(name: str, config: ProviderConfig, context: ProviderContext) -> LocalProvider:
    try:
        options = LocalOptions.model_validate(config.options)
    except ValidationError as exc:
        raise ProviderNotConfiguredError(f"providers.{name}.options: {exc}") from exc
    return LocalProvider(name, options)
