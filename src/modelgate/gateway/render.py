"""Render gateway results in the public wire format (OpenAI shape + AI/ML API ``meta.usage``)."""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.providers.base import Chunk, Completion, Usage


def usd(credits: int) -> float:
    return round(credits / CREDITS_PER_USD, 9)


def usd_header(credits: int) -> str:
    return f"{credits / CREDITS_PER_USD:.9f}"


def meta(credits: int) -> dict[str, Any]:
    return {"usage": {"credits_used": credits, "usd_spent": usd(credits)}}


def completion_body(
    *, completion_id: str, created: int, model: str, result: Completion, credits: int
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": result.choices,
        "usage": result.usage.to_wire(),
        "meta": meta(credits),
    }
    if result.system_fingerprint:
        body["system_fingerprint"] = result.system_fingerprint
    return body


class ChunkRenderer:
    """Turns provider chunks into SSE frames with stable id/created/model."""

    __slots__ = ("_prefix", "_role_sent")

    def __init__(self, *, completion_id: str, created: int, model: str) -> None:
        head = orjson.dumps(
            {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        )
        self._prefix = head[:-1]  # '{"id":...,"model":"..."' without the closing brace
        self._role_sent: set[int] = set()

    def _frame(self, extra: dict[str, Any]) -> bytes:
        return b"data: " + self._prefix + b"," + orjson.dumps(extra)[1:] + b"\n\n"

    def choices(self, chunk: Chunk) -> bytes | None:
        if not chunk.choices:
            return None
        for choice in chunk.choices:
            idx = choice.get("index", 0)
            if idx not in self._role_sent:
                self._role_sent.add(idx)
                delta = choice.get("delta")
                if isinstance(delta, dict) and "role" not in delta:
                    choice["delta"] = {"role": "assistant", **delta}
        return self._frame({"choices": chunk.choices})

    def usage(self, usage: Usage, credits: int | None) -> bytes:
        extra: dict[str, Any] = {"choices": [], "usage": usage.to_wire()}
        if credits is not None:
            extra["meta"] = meta(credits)
        return self._frame(extra)

    def final_meta(self, credits: int) -> bytes:
        return self._frame({"choices": [], "meta": meta(credits)})


DONE = b"data: [DONE]\n\n"


def error_frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
