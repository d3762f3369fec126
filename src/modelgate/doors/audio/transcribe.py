"""The transcription doors: ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``
(OpenAI's multipart uploads), on the core under the ``model:audio`` scope.

The upload is read under the edge's body limit, then parsed (``httpkit/multipart.py``) and checked:
the file against the model's limits (``catalog/models.py`` ``Transcription``) and its own bytes
(``doors/audio/files.py``: a container OpenAI takes; a WAV header that reads), the fields against
OpenAI's rules — each a 400 in the OpenAI envelope naming the field. Answers in every
``response_format`` (``doors/audio/render.py``).

Billing: per second of audio in (the ``second`` unit), rounded up. The duration is never the
client's word: a WAV file's comes from its header (exact, held and charged); any other file is held
at its size over ``min_bitrate_bps`` (at most ``max_seconds``) and charged the duration the upstream
reports in its verbose answer (at most ``max_seconds``; the hold's figure when it reports none).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from modelgate.catalog.models import ModelSpec
from modelgate.doors.audio.files import sniff, wav_seconds
from modelgate.doors.audio.render import CONTENT_TYPES, render
from modelgate.doors.base import (
    DoorRequest,
    DoorResponse,
    NeverStreamed,
    OpenAIEnvelopeDoor,
    checked,
    dropped_header,
    whole_answer,
)
from modelgate.errors import InvalidRequestError
from modelgate.gateway.metered import Attempt, Caller, MeteredRequest, Outcome
from modelgate.httpkit.contract import operation
from modelgate.httpkit.multipart import Form, Upload, parse_form
from modelgate.providers.base import Transcript, TranscriptionCall, TranscriptionProvider, Usage
from modelgate.wire.credits import meta

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState

SCOPE = "model:audio"
UNIT = "second"
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})?$")
_GRANULARITIES = ("word", "segment")


def _field_error(name: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(f"{name}: {why}", param=name)


class TranscriptionRequest:
    __slots__ = ("dropped", "file", "fmt", "model", "options", "provider")

    def __init__(self, form: Form, *, translate: bool) -> None:
        known = {"model", "response_format", "prompt", "temperature", "provider"}
        if not translate:
            known |= {"language", "timestamp_granularities[]", "timestamp_granularities"}
        self.dropped = sorted(n[:64] for n in set(form.fields) - known) + sorted(
            n[:64] for n in set(form.files) - {"file"}
        )
        model = form.one("model")
        if not model or len(model) > 256:
            raise _field_error("model", "required: the model's id (1 to 256 characters)")
        self.model = model
        file = form.files.get("file")
        if file is None or not file.data:
            raise _field_error("file", "required: the audio file to transcribe, not empty")
        self.file: Upload = file
        self.fmt = form.one("response_format") or "json"
        if self.fmt not in CONTENT_TYPES:
            raise _field_error("response_format", f"must be one of {', '.join(CONTENT_TYPES)}")
        self.provider = form.one("provider")
        options: dict[str, Any] = {}
        prompt = form.one("prompt")
        if prompt is not None:
            if len(prompt) > 8192:
                raise _field_error("prompt", "at most 8192 characters")
            options["prompt"] = prompt
        temperature = form.one("temperature")
        if temperature is not None:
            try:
                value = float(temperature)
            except ValueError:
                value = math.nan
            if not 0 <= value <= 1:
                raise _field_error("temperature", "must be a number from 0 to 1")
            options["temperature"] = value
        if not translate:
            language = form.one("language")
            if language is not None:
                if not _LANGUAGE.match(language):
                    raise _field_error("language", "must be an ISO-639-1 code such as en")
                options["language"] = language
            grains = form.fields.get("timestamp_granularities[]", []) + form.fields.get(
                "timestamp_granularities", []
            )
            if grains:
                if any(g not in _GRANULARITIES for g in grains) or len(set(grains)) != len(grains):
                    raise _field_error("timestamp_granularities", "each one of word, segment, given once")
                if self.fmt != "verbose_json":
                    raise _field_error("timestamp_granularities", "only with response_format verbose_json")
                options["timestamp_granularities"] = grains
        self.options = options


def held_seconds(req: TranscriptionRequest, model: ModelSpec | None) -> tuple[int, bool]:
    """The seconds the hold covers, and whether they are exact (a WAV header's); a 400 for a file the
    model cannot take. A model that is unknown or no transcription model is left to admission."""
    if model is None or model.type != "transcription" or model.transcription is None:
        return 1, False
    spec = model.transcription
    data = req.file.data
    if len(data) > spec.max_file_bytes:
        raise InvalidRequestError(
            f"file: {len(data)} bytes; {model.id} takes files of at most {spec.max_file_bytes} bytes",
            param="file",
            code="file_too_large",
        )
    kind = sniff(data)
    if kind == "wav":
        seconds = max(1, math.ceil(wav_seconds(data)))
        if seconds > spec.max_seconds:
            raise InvalidRequestError(
                f"file: {seconds} seconds of audio; {model.id} takes at most {spec.max_seconds}", param="file"
            )
        return seconds, True
    return max(1, min(spec.max_seconds, math.ceil(len(data) * 8 / spec.min_bitrate_bps))), False


class TranscriptionInvocation(NeverStreamed):
    __slots__ = ("exact", "held", "req", "translate")

    def __init__(self, req: TranscriptionRequest, *, held: int, exact: bool, translate: bool) -> None:
        self.req, self.held, self.exact, self.translate = req, held, exact, translate

    def seconds(self, t: Transcript, model: ModelSpec) -> int:
        if self.exact or t.duration is None:
            return self.held
        cap = model.transcription.max_seconds if model.transcription else self.held
        return max(1, min(cap, math.ceil(t.duration)))

    async def complete(self, provider: Any, attempt: Attempt) -> Outcome:
        if not isinstance(provider, TranscriptionProvider):  # admission keeps only capable routes
            raise InvalidRequestError(
                f"{attempt.model.id} cannot transcribe on route {attempt.route.provider}"
            )
        file = self.req.file
        call = TranscriptionCall(
            file=file.data,
            filename=file.filename,
            content_type=file.content_type,
            upstream_model=attempt.route.model,
            model=attempt.model,
            translate=self.translate,
            options=self.req.options,
            inference_id=attempt.inference_id,
            extra=attempt.route.options,
        )
        t = await provider.transcribe(call)
        return Outcome(t, Usage(uses={UNIT: self.seconds(t, attempt.model)}), "stop")

    unstreamed = "transcriptions are never streamed"


def _form_schema(translate: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "file": {"type": "string", "format": "binary"},
        "model": {"type": "string"},
        "response_format": {"type": "string", "enum": list(CONTENT_TYPES)},
        "prompt": {"type": "string"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    }
    if not translate:
        props["language"] = {"type": "string"}
        props["timestamp_granularities[]"] = {
            "type": "array",
            "items": {"type": "string", "enum": list(_GRANULARITIES)},
        }
    return {"type": "object", "required": ["file", "model"], "properties": props}


class TranscriptionsDoor(OpenAIEnvelopeDoor):
    name = "transcriptions"
    note = "OpenAI-compatible transcription (multipart upload); priced per second of audio."
    paths = frozenset({"/v1/audio/transcriptions", "/audio/transcriptions"})
    translate = False

    def openapi(self) -> dict[str, dict[str, Any]]:
        body = {
            "required": True,
            "content": {"multipart/form-data": {"schema": _form_schema(self.translate)}},
        }
        op = operation(
            summary="Translate audio into English" if self.translate else "Transcribe audio",
            body=body,
            upstream=True,
        )
        return dict.fromkeys(self.paths, op)

    def held(self, tr: TranscriptionRequest, model: ModelSpec | None) -> tuple[int, bool]:
        if (
            self.translate
            and model is not None
            and model.transcription
            and not model.transcription.translations
        ):
            raise InvalidRequestError(
                f"{model.id} does not translate; use /v1/audio/transcriptions", param="model"
            )
        return held_seconds(tr, model)

    def parse(self, req: DoorRequest) -> TranscriptionRequest:
        return TranscriptionRequest(
            parse_form(req.body, req.header("content-type")), translate=self.translate
        )

    async def run(self, state: AppState, parsed: Any, caller: Caller, req: DoorRequest) -> DoorResponse:
        tr: TranscriptionRequest = parsed
        held, exact = checked(state, caller, tr.model, lambda m: self.held(tr, m))
        metered = MeteredRequest(
            model=tr.model,
            invocation=TranscriptionInvocation(tr, held=held, exact=exact, translate=self.translate),
            provider=tr.provider,
            kind="transcription",
            scope=SCOPE,
            max_tokens=1,
            needs=frozenset({"transcription"}),
            uses={UNIT: held},
        )
        done = await state.core.complete(metered, caller)
        seconds = (done.usage.uses or {}).get(UNIT, held)
        task = "translate" if self.translate else "transcribe"
        body = render(done.payload, tr.fmt, task=task, seconds=seconds, meta=meta(done.credits))
        return whole_answer(
            done, body, None, {**dropped_header(tr.dropped), "content-type": CONTENT_TYPES[tr.fmt]}
        )


class TranslationsDoor(TranscriptionsDoor):
    name = "translations"
    note = "OpenAI-compatible translation of audio into English text; priced per second of audio."
    paths = frozenset({"/v1/audio/translations", "/audio/translations"})
    translate = True
