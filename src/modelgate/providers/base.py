"""The provider contract: one small async Protocol that every upstream adapter implements.

An adapter receives a ``ProviderCall`` (the validated public request, the upstream model name and the
effective output cap already resolved) and answers either a ``Completion`` or an async iterator of
``Chunk``. Both speak the OpenAI chat shape internally: ``Completion.choices`` are OpenAI
``choices[]`` dicts (``index``, ``message``, ``finish_reason``, ``logprobs``) and ``Chunk.choices``
are OpenAI ``choices[]`` delta dicts. The gateway adds ids, model name, usage and credits.

Errors: adapters raise ``modelgate.errors.UpstreamError`` subclasses (translated at their boundary
with ``raise ... from exc``) or ``InvalidRequestError`` for options the upstream cannot honour.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from modelgate.catalog.models import ModelSpec, ProviderConfig
    from modelgate.wire.chat import ChatRequest


@dataclass(slots=True)
class Usage:
    """What one request used, in the categories price sheets charge (``catalog/prices.py``).

    ``prompt_tokens`` is the whole input; ``cached_tokens`` (cache reads), the cache writes by
    lifetime and the audio/image input tokens are parts of it. ``completion_tokens`` is the whole
    output (reasoning and audio output included). ``uses`` counts per-use fees and non-token units
    (``web_search``, ``code_execution``, ``image:1024x1024/high``, ``second``, ``character``, ``request``).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0  # includes reasoning tokens
    reasoning_tokens: int = 0
    cached_tokens: int = 0  # cache reads
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    audio_input_tokens: int = 0
    image_input_tokens: int = 0
    audio_output_tokens: int = 0
    uses: dict[str, int] | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    def to_wire(self) -> dict[str, Any]:
        prompt: dict[str, Any] = {"cached_tokens": self.cached_tokens}
        if self.audio_input_tokens:
            prompt["audio_tokens"] = self.audio_input_tokens
        writes = self.cache_write_5m_tokens + self.cache_write_1h_tokens
        if writes:
            prompt["cache_write_tokens"] = writes
        completion: dict[str, Any] = {"reasoning_tokens": self.reasoning_tokens}
        if self.audio_output_tokens:
            completion["audio_tokens"] = self.audio_output_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "completion_tokens_details": completion,
            "prompt_tokens_details": prompt,
        }


def _unreported(usage: Usage) -> None:
    """``ProviderCall.on_usage`` when nobody listens."""


@dataclass(slots=True)
class ProviderCall:
    """Everything an adapter needs for one upstream call."""

    request: ChatRequest
    upstream_model: str
    max_tokens: int  # effective output cap (client's, or the 512 default), reasoning included
    model: ModelSpec
    inference_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)  # route-level options from the catalogue
    # Adapters that know their counts exactly as they go (the local model; ``drain_on_disconnect``
    # False) call this with their running totals each time they change, so that a stream the client
    # abandons is charged for what was produced. The caller passes its own recorder; the adapter only
    # reports, it never reads anything back (data flows one way).
    on_usage: Callable[[Usage], None] = _unreported
    # Per-call headers for the upstream request: the trace context, for a provider whose operator
    # forwards it (``forward_traceparent``).
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Completion:
    choices: list[dict[str, Any]]
    usage: Usage
    upstream_id: str | None = None
    system_fingerprint: str | None = None


@dataclass(slots=True)
class Chunk:
    """One streamed event: delta choices, and/or the final usage (usually on the last chunk)."""

    choices: list[dict[str, Any]]
    usage: Usage | None = None


@dataclass(slots=True)
class RawReply:
    """A whole upstream answer passed through in its own dialect (bytes untouched), with what
    billing needs read from it."""

    body: bytes
    usage: Usage
    finish: str | None = None


@dataclass(slots=True)
class RawEvent:
    """One upstream stream event passed through as it came (a complete SSE frame), with the usage
    or finish it carries when it carries one."""

    frame: bytes
    kind: str | None = None
    usage: Usage | None = None
    finish: str | None = None
    output: bool = False


@runtime_checkable
class NativeProvider(Protocol):
    """An adapter that can pass a request through in an API dialect its upstream speaks natively
    (``dialects``: e.g. ``anthropic-messages``, ``openai-responses``). The body is sent unchanged;
    ``headers`` are the client's protocol headers worth forwarding (versions, betas)."""

    dialects: frozenset[str]

    async def passthrough(self, dialect: str, body: bytes, headers: Mapping[str, str]) -> RawReply: ...

    def passthrough_stream(
        self, dialect: str, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[RawEvent]: ...

    async def count_tokens(self, dialect: str, body: bytes, headers: Mapping[str, str]) -> int | None:
        """The upstream's exact input-token count of a request body in ``dialect`` (Anthropic's
        ``/messages/count_tokens``); None when the upstream has no such count (the door estimates)."""
        ...


def native(provider: Provider, dialect: str) -> NativeProvider | None:
    """``provider`` when it passes ``dialect`` through, else None."""
    # No isinstance() on the runtime-checkable Protocol: it walks every member on each call (hot path).
    if dialect in provider.dialects:
        return provider  # type: ignore[return-value]
    return None


@runtime_checkable
class Provider(Protocol):
    """What every upstream adapter is. Every attribute the gateway reads is declared here (and
    checked when the providers are built: ``undeclared``); nothing reads an undeclared one.
    Capability flags let admission (``gateway/admission.py``) reject what cannot work."""

    name: str
    supports_tools: bool  # tools / tool_choice
    supports_json_schema: bool  # response_format json_schema / json_object
    supports_streaming: bool
    supports_vision: bool  # image parts in the input
    supports_embeddings: bool  # also an ``EmbeddingProvider`` (``embed``)
    # True: a chat request's unknown top-level fields go up as sent; False: the chat door names them
    # in ``x-modelgate-dropped``.
    forwards_unknown_fields: bool
    # True: when a client abandons a stream, keep reading the upstream for its final usage.
    # False: the adapter stops generating at once and reports its exact counts through
    # ``ProviderCall.on_usage`` instead.
    drain_on_disconnect: bool
    # The API dialects it passes through natively (then it is also a ``NativeProvider``); empty: none.
    dialects: frozenset[str]

    async def complete(self, call: ProviderCall) -> Completion: ...

    def stream(self, call: ProviderCall) -> AsyncIterator[Chunk]: ...

    async def aclose(self) -> None: ...

    # The side contract (``AdapterDefaults`` gives an adapter that has nothing to say the defaults):
    async def start(self) -> None:
        """Warm up before the first request (the local model loads); called once at start-up."""
        ...

    def ready(self) -> bool:
        """Whether it can serve now (``/ready``; False: "starting")."""
        ...

    def queue_depth(self) -> int | None:
        """Requests waiting inside the adapter (the ``queue_depth`` gauge); None: it has no queue."""
        ...


class AdapterDefaults:
    """The defaults of ``Provider``'s side contract, for adapters to inherit: nothing to warm up,
    always ready, no queue of their own."""

    async def start(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    def queue_depth(self) -> int | None:
        return None


def undeclared(provider: object) -> list[str]:
    """The members of ``Provider`` that ``provider`` lacks (a third-party adapter written against
    an older contract): named in a start-up error rather than guessed at request time."""
    members = [*Provider.__annotations__, "complete", "stream", "aclose", "start", "ready", "queue_depth"]
    return [m for m in members if not hasattr(provider, m)]


@dataclass(slots=True)
class EmbedCall:
    """One embeddings call: the validated inputs (texts, or token-id arrays), already within limits."""

    inputs: list[str] | list[list[int]]  # texts, or token-id arrays
    upstream_model: str
    model: ModelSpec
    dimensions: int | None = None
    inference_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Embeddings:
    """One vector per input, in input order, and the input tokens the upstream counted."""

    vectors: list[list[float]]
    prompt_tokens: int


@runtime_checkable
class EmbeddingProvider(Protocol):
    """What an adapter that serves ``type: embedding`` models is (a provider may be both kinds)."""

    name: str

    async def embed(self, call: EmbedCall) -> Embeddings: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class ImageCall:
    """One image-generation call: the validated request, its size and quality already resolved to
    the priced ones (``catalog/models.py`` ``Images``); ``options`` are the other validated fields
    (``style``, ``background``, ``output_format``, ``response_format``, ...) as the client sent them."""

    prompt: str
    upstream_model: str
    model: ModelSpec
    n: int
    size: str
    quality: str
    options: Mapping[str, Any] = field(default_factory=dict)
    inference_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    # An edit (``POST /v1/images/edits``): the image to edit and the optional mask, each
    # (filename, content type, bytes); None: a generation.
    image: tuple[str, str, bytes] | None = None
    mask: tuple[str, str, bytes] | None = None


@dataclass(slots=True)
class Images:
    """The images of one call, checked by the adapter: each ``{"b64_json": ...}`` or ``{"url":
    ...}`` (with ``revised_prompt`` when the upstream gave one), never more than asked for."""

    data: list[dict[str, str]]
    created: int
    extra: dict[str, str] = field(default_factory=dict)  # output_format, background, ... as answered


@runtime_checkable
class ImageProvider(Protocol):
    """What an adapter that serves ``type: image`` models is (``POST /v1/images/generations``)."""

    name: str

    async def generate_images(self, call: ImageCall) -> Images: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class SpeechCall:
    """One speech-synthesis call (``POST /v1/audio/speech``): the validated text, voice and format;
    ``options`` the other validated fields (``speed``, ``instructions``) as the client sent them."""

    input: str
    upstream_model: str
    model: ModelSpec
    voice: str
    response_format: str
    options: Mapping[str, Any] = field(default_factory=dict)
    inference_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class SpeechProvider(Protocol):
    """What an adapter that serves ``type: speech`` models is: the audio bytes as they come (an
    upstream that streams is passed on chunk by chunk)."""

    name: str

    def speech(self, call: SpeechCall) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class TranscriptionCall:
    """One transcription (or translation into English) of an uploaded audio file."""

    file: bytes
    filename: str
    content_type: str
    upstream_model: str
    model: ModelSpec
    translate: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # language, prompt, temperature, ...
    inference_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Transcript:
    """The text of an audio file, with what the upstream knew: its duration in seconds (None: it
    did not say), its language, and timed segments / words (``start``, ``end`` in seconds, ``text``
    or ``word``)."""

    text: str
    duration: float | None = None
    language: str | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)
    words: list[dict[str, Any]] | None = None


@runtime_checkable
class TranscriptionProvider(Protocol):
    """What an adapter that serves ``type: transcription`` models is."""

    name: str

    async def transcribe(self, call: TranscriptionCall) -> Transcript: ...

    async def aclose(self) -> None: ...


def _environment() -> dict[str, str]:
    return dict(os.environ)


@dataclass(slots=True)
class ProviderContext:
    """Shared resources handed to provider factories (no globals)."""

    user_agent: str = "modelgate"
    # The process environment as the factories may read it (cloud credential chains:
    # GOOGLE_APPLICATION_CREDENTIALS, AWS_*); tests pass their own.
    environ: Mapping[str, str] = field(default_factory=_environment)


ProviderFactory = Callable[["str", "ProviderConfig", ProviderContext], Provider]
