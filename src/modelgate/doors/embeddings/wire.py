"""The public ``POST /v1/embeddings`` request (OpenAI's shape) and the rendering of its answer.

``input`` is a string, an array of strings, an array of token ids or an array of token-id arrays;
anything else, an empty string, an empty array or a negative token id is a 400 naming the field.
Unknown top-level fields are accepted and ignored (as for chat). The answer's vectors are plain
JSON numbers (``encoding_format: float``, the default) or base64 of little-endian float32
(``base64``, what the OpenAI SDKs ask for and decode).
"""

from __future__ import annotations

import base64
from array import array
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelgate.wire.numbers import Integer

MAX_TOKEN_ID = 2**31 - 1
_SHAPE = "must be a string, an array of strings, an array of token ids or an array of token-id arrays"


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: list[str] | list[list[int]]  # normalised: texts, or token-id arrays (one per input)
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Integer | None = Field(default=None, ge=1, le=65536)
    user: str | None = None
    provider: str | None = None  # a route's provider, as for chat (``auto`` or absent: the chain)

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: Any) -> list[str] | list[list[int]]:
        return normalise_input(value)

    @property
    def texts(self) -> bool:
        return bool(self.input) and isinstance(self.input[0], str)


def _token_ids(value: list[Any], where: str) -> list[int]:
    if not value:
        raise ValueError(f"{where} must not be empty")
    for i, t in enumerate(value):
        if isinstance(t, bool) or not isinstance(t, int):
            raise ValueError(f"{where}[{i}] must be a token id (an integer); {_SHAPE}")
        if not 0 <= t <= MAX_TOKEN_ID:
            raise ValueError(f"{where}[{i}] is not a valid token id")
    return value


def normalise_input(value: Any) -> list[str] | list[list[int]]:
    """One list of inputs from any accepted shape, or a ``ValueError`` saying what is wrong."""
    if isinstance(value, str):
        if not value:
            raise ValueError("must not be an empty string")
        return [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"must not be empty; it {_SHAPE}" if value == [] else _SHAPE)
    first = value[0]
    if isinstance(first, str):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"[{i}] is not a string; {_SHAPE}")
            if not item:
                raise ValueError(f"[{i}] must not be an empty string")
        return list(value)
    if isinstance(first, list):
        out: list[list[int]] = []
        for i, item in enumerate(value):
            if not isinstance(item, list):
                raise ValueError(f"[{i}] is not an array of token ids; {_SHAPE}")
            out.append(_token_ids(item, f"[{i}]"))
        return out
    if isinstance(first, int) and not isinstance(first, bool):
        return [_token_ids(value, "")]
    raise ValueError(_SHAPE)


def encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(array("f", vector).tobytes()).decode("ascii")
    return vector


def render_embeddings(
    vectors: list[list[float]],
    *,
    model: str,
    prompt_tokens: int,
    encoding: str,
    meta: dict[str, Any],
) -> bytes:
    """The whole response body: OpenAI's list plus the AI/ML API's ``meta`` (``usage`` credits)."""
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(v, encoding)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        "meta": meta,
    }
    return orjson.dumps(body)
