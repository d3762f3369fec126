"""The public ``POST /v1/images/generations`` request (OpenAI's shape) and its answer.

Every field OpenAI documents is validated here (a wrong type or value is a 400 naming it); what a
model offers (its sizes and qualities, ``n``, the prompt's length) is checked by the door against
the catalogue. Unknown top-level fields are accepted and named in ``x-modelgate-dropped``.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

SIZE_PATTERN = r"^(auto|[1-9][0-9]{1,4}x[1-9][0-9]{1,4})$"
QUALITY_PATTERN = r"^[a-z]{1,16}$"
# Validated fields passed to the upstream as sent (the prompt, n, size and quality go up resolved).
FORWARDED = (
    "response_format",
    "output_format",
    "output_compression",
    "background",
    "moderation",
    "style",
    "user",
)


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    prompt: str = Field(min_length=1)
    n: StrictInt | None = Field(default=None, ge=1, le=100)
    size: str | None = Field(default=None, pattern=SIZE_PATTERN)
    quality: str | None = Field(default=None, pattern=QUALITY_PATTERN)
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: StrictInt | None = Field(default=None, ge=0, le=100)
    background: Literal["transparent", "opaque", "auto"] | None = None
    moderation: Literal["low", "auto"] | None = None
    style: Literal["vivid", "natural"] | None = None
    user: str | None = Field(default=None, max_length=256)
    stream: StrictBool | None = None
    provider: str | None = None  # a route's provider, as for chat (``auto`` or absent: the chain)

    def forwarded(self) -> dict[str, Any]:
        return {k: v for k in FORWARDED if (v := getattr(self, k)) is not None}


def render_images(
    data: list[dict[str, str]], *, created: int, extra: dict[str, str], meta: dict[str, Any]
) -> bytes:
    """The whole response body: OpenAI's ``ImagesResponse`` plus the AI/ML API's ``meta``."""
    return orjson.dumps({"created": created, "data": data, **extra, "meta": meta})
