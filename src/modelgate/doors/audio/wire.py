"""The public ``POST /v1/audio/speech`` request (OpenAI's shape).

``voice`` is a voice name or ``{"id": name}`` (a custom voice); ``stream_format`` may be ``audio``
(the bytes, streamed as the upstream makes them); ``sse`` is refused. Unknown top-level fields are
accepted and named in ``x-modelgate-dropped``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The content type of each audio format (what OpenAI answers).
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    input: str = Field(min_length=1)
    voice: str
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: float | None = Field(default=None, ge=0.25, le=4.0, allow_inf_nan=False)
    instructions: str | None = Field(default=None, max_length=4096)
    stream_format: Literal["audio"] | None = None
    provider: str | None = None  # a route's provider, as for chat (``auto`` or absent: the chain)

    @field_validator("voice", mode="before")
    @classmethod
    def _voice(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"id"}:
            value = value["id"]
        if not isinstance(value, str) or not 1 <= len(value) <= 128:
            raise ValueError('must be a voice name (a string of 1 to 128 characters) or {"id": name}')
        return value

    def forwarded(self) -> dict[str, Any]:
        return {k: v for k in ("speed", "instructions") if (v := getattr(self, k)) is not None}
