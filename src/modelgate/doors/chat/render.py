"""Chat Completions output: the OpenAI shape plus the AI/ML API's ``meta.usage``.

Streams: every frame the client sees has ``choices`` with at least one element, except the usage
chunk that ``stream_options.include_usage`` asks for (``choices: []``, as OpenAI documents it).
Without ``include_usage``, ``meta.usage`` rides on the last chunk that has choices: the chunk that
carries a ``finish_reason`` is held back until the upstream ends (its usage, hence the charge, is
only known then) — so a ``for chunk in stream: chunk.choices[0]`` loop never sees an empty list.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.providers.base import Chunk, Completion, Usage
from modelgate.wire.credits import meta


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

    __slots__ = ("_choices_head", "_held", "_prefix", "_role_sent", "_sent_choices")

    def __init__(self, *, completion_id: str, created: int, model: str) -> None:
        head = orjson.dumps(
            {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        )
        self._prefix = head[:-1]  # '{"id":...,"model":"..."' without the closing brace
        self._choices_head = b"data: " + self._prefix + b',"choices":'
        self._role_sent: set[int] = set()
        self._held: list[dict[str, Any]] | None = None  # the finishing chunk's choices, not yet sent
        self._sent_choices = False

    def _frame(self, extra: dict[str, Any]) -> bytes:
        return b"data: " + self._prefix + b"," + orjson.dumps(extra)[1:] + b"\n\n"

    def choices(self, chunk: Chunk, *, hold_finish: bool = False) -> bytes | None:
        """The frame for ``chunk`` (None if it has no choices). ``hold_finish``: keep a chunk that
        finishes a choice for ``tail()`` (releasing any earlier held one first)."""
        choices = chunk.choices
        if not choices:
            return None
        if len(choices) == 1 and self._held is None:  # the common chunk: one choice, nothing held
            choice = choices[0]
            if choice.get("index", 0) in self._role_sent and not (
                hold_finish and choice.get("finish_reason")
            ):
                self._sent_choices = True
                return self._choices_head + orjson.dumps(choices) + b"}\n\n"
        for choice in chunk.choices:
            idx = choice.get("index", 0)
            if idx not in self._role_sent:
                self._role_sent.add(idx)
                delta = choice.get("delta")
                if isinstance(delta, dict) and "role" not in delta:
                    choice["delta"] = {"role": "assistant", **delta}
        out = b""
        if self._held is not None:
            out = self._frame({"choices": self._held})
            self._held = None
        if hold_finish:
            for c in chunk.choices:
                if c.get("finish_reason"):
                    self._held = chunk.choices
                    return out or None
        self._sent_choices = True
        return out + self._frame({"choices": chunk.choices})

    def tail(self, usage: Usage, credits: int, *, include_usage: bool) -> bytes:
        """The last frame(s): the usage chunk (``include_usage``) or ``meta`` on the last choices."""
        if include_usage:
            held = self._frame({"choices": self._held}) if self._held is not None else b""
            self._held = None
            return held + self._frame({"choices": [], "usage": usage.to_wire(), "meta": meta(credits)})
        choices = self._held
        self._held = None
        if choices is None:
            choices = [
                {
                    "index": 0,
                    "delta": {} if self._sent_choices else {"role": "assistant"},
                    "finish_reason": None,
                    "logprobs": None,
                }
            ]
        return self._frame({"choices": choices, "meta": meta(credits)})

    def flush(self) -> bytes:
        """A held chunk, sent as is (the stream failed before its end)."""
        if self._held is None:
            return b""
        frame = self._frame({"choices": self._held})
        self._held = None
        return frame


DONE = b"data: [DONE]\n\n"


def error_frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
