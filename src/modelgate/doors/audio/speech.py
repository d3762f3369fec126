"""The Speech door (``POST /v1/audio/speech``): OpenAI's request; the answer is the audio bytes.

Parse into ``doors/audio/wire.py``'s ``SpeechRequest``; check the text's length, the voice and the
format against the model (``catalog/models.py`` ``Speech``) — each a 400 in the OpenAI envelope
naming the field; meter it on the core's stream under the ``model:speech`` scope with
``SpeechInvocation`` (adapters implement ``providers/base.py``'s ``SpeechProvider``) and pass the
audio on as it arrives.

Billing: per character of ``input`` (``pricing.per_mchar_usd``, the ``character`` unit): the hold
and the charge are the same, known before the call, so the cost headers come with the audio. The
count is charged once audio has started to flow (a failure before the first byte costs nothing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from modelgate.catalog.models import ModelSpec
from modelgate.doors.audio.wire import AUDIO_TYPES, SpeechRequest
from modelgate.doors.base import DoorRequest, DoorResponse, OpenAIEnvelopeDoor, checked, dropped_header
from modelgate.errors import InvalidRequestError
from modelgate.gateway.metered import Attempt, Caller, Event, MeteredRequest, MeteredStream, Outcome
from modelgate.gateway.streaming import aclose
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.errors import validate_body
from modelgate.providers.base import SpeechCall, SpeechProvider, Usage
from modelgate.wire.credits import cost_headers

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState

SCOPE = "model:speech"
UNIT = "character"


def check(req: SpeechRequest, model: ModelSpec | None) -> str:
    """The response format; a 400 naming the field for what the model does not take. A model that
    is unknown or no speech model is left to admission (404)."""
    fmt = req.response_format or "mp3"
    if model is None or model.type != "speech" or model.speech is None:
        return fmt
    spec = model.speech
    if len(req.input) > spec.max_input_chars:
        raise InvalidRequestError(
            f"input: {len(req.input)} characters; {model.id} takes at most {spec.max_input_chars}",
            param="input",
            code="input_too_long",
        )
    if spec.voices and req.voice not in spec.voices:
        raise InvalidRequestError(
            f"voice: {model.id} has the voices {', '.join(spec.voices)}; got {req.voice[:128]}", param="voice"
        )
    if fmt not in spec.formats:
        raise InvalidRequestError(
            f"response_format: {model.id} makes {', '.join(spec.formats)}; got {fmt}", param="response_format"
        )
    return fmt


class SpeechInvocation:
    """Streams an adapter's audio; the first piece carries the usage (every character of input)."""

    __slots__ = ("fmt", "options", "text", "voice")

    def __init__(self, req: SpeechRequest, fmt: str) -> None:
        self.text, self.voice, self.fmt = req.input, req.voice, fmt
        self.options = req.forwarded()

    async def complete(self, provider: Any, attempt: Attempt) -> Outcome:
        raise InvalidRequestError("speech is always streamed")

    async def stream(self, provider: Any, attempt: Attempt) -> AsyncIterator[Event]:
        if not isinstance(provider, SpeechProvider):  # admission keeps only capable routes
            raise InvalidRequestError(f"{attempt.model.id} cannot speak on route {attempt.route.provider}")
        call = SpeechCall(
            input=self.text,
            upstream_model=attempt.route.model,
            model=attempt.model,
            voice=self.voice,
            response_format=self.fmt,
            options=self.options,
            inference_id=attempt.inference_id,
            extra=attempt.route.options,
        )
        usage: Usage | None = Usage(uses={UNIT: len(self.text)})
        async for chunk in provider.speech(call):
            yield Event(chunk, usage=usage, finish="stop" if usage else None)
            usage = None


async def _audio(stream: MeteredStream) -> AsyncIterator[bytes]:
    """The audio bytes; closing it early (the client left) closes the core's stream, which settles."""
    try:
        async for event in stream.events:
            if isinstance(event, Event) and isinstance(event.payload, bytes):
                yield event.payload
    finally:
        await aclose(stream.events)


class SpeechDoor(OpenAIEnvelopeDoor):
    name = "speech"
    note = "OpenAI-compatible speech synthesis: the audio bytes, streamed; priced per character."
    paths = frozenset({"/v1/audio/speech", "/audio/speech"})

    def openapi(self) -> dict[str, dict[str, Any]]:
        audio = {t: {"schema": {"type": "string", "format": "binary"}} for t in AUDIO_TYPES.values()}
        op = operation(
            summary="Create speech",
            body=json_body(SpeechRequest),
            upstream=True,
            responses={"200": {"description": "The audio", "content": audio}},
        )
        return dict.fromkeys(self.paths, op)

    def parse(self, req: DoorRequest) -> SpeechRequest:
        return validate_body(req.body, SpeechRequest)

    async def run(self, state: AppState, parsed: Any, caller: Caller, req: DoorRequest) -> DoorResponse:
        speech: SpeechRequest = parsed
        fmt = checked(state, caller, speech.model, lambda m: check(speech, m))
        usage = Usage(uses={UNIT: len(speech.input)})
        metered = MeteredRequest(
            model=speech.model,
            invocation=SpeechInvocation(speech, fmt),
            stream=True,
            provider=speech.provider,
            kind="speech",
            scope=SCOPE,
            max_tokens=1,
            needs=frozenset({"speech"}),
            uses=usage.uses,
        )
        stream = await state.core.stream(metered, caller)
        route = next((r for r in stream.model.routes if r.provider == stream.provider), None)
        credits = stream.model.sheet(route).cost(usage)
        headers = {
            **stream.headers,
            "x-modelgate-provider": stream.provider,
            **cost_headers(credits),
            **dropped_header(sorted(speech.model_extra or {})),
            "content-type": AUDIO_TYPES[fmt],
        }
        return DoorResponse(200, headers, frames=_audio(stream))
