"""Chat answers as Anthropic Messages, for routes that are not Anthropic (the request's direction is
``doors/messages/translate.py``).

- ``to_message``: a chat ``Completion`` as an Anthropic ``message`` object.
- ``EventTranslator``: chat delta chunks as Anthropic's named SSE events, one by one (no buffering).
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.providers.base import Chunk, Completion, Usage

STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def usage_wire(usage: Usage) -> dict[str, Any]:
    writes = usage.cache_write_tokens
    out: dict[str, Any] = {
        "input_tokens": max(usage.prompt_tokens - usage.cached_tokens - writes, 0),
        "cache_creation_input_tokens": writes,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }
    if writes:
        out["cache_creation"] = {
            "ephemeral_5m_input_tokens": usage.cache_write_5m_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        }
    if usage.uses and "web_search" in usage.uses:
        out["server_tool_use"] = {"web_search_requests": usage.uses["web_search"]}
    return out


def _tool_input(arguments: Any) -> Any:
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


def to_message(result: Completion, *, msg_id: str, model: str, stop_hit: str | None = None) -> dict[str, Any]:
    choice = result.choices[0] if result.choices else {}
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if msg.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": msg["reasoning_content"], "signature": ""})
    if msg.get("content"):
        content.append({"type": "text", "text": msg["content"]})
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{msg_id}_{len(content)}",
                "name": fn.get("name", ""),
                "input": _tool_input(fn.get("arguments")),
            }
        )
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASON.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": stop_hit,
        "usage": usage_wire(result.usage),
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventTranslator:
    """Chat delta chunks -> Anthropic stream events, block by block, as they arrive."""

    def __init__(self, *, msg_id: str, model: str) -> None:
        self._id = msg_id
        self._model = model
        self._index = -1
        self._open: str | None = None  # "text" | "thinking" | "tool:<chat index>"
        self.stop_reason: str | None = None

    def start(self, usage: Usage | None = None) -> bytes:
        wire = usage_wire(usage or Usage())
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": wire,
        }
        return sse("message_start", {"type": "message_start", "message": message}) + sse(
            "ping", {"type": "ping"}
        )

    def _switch(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = kind
        return out + sse(
            "content_block_start",
            {"type": "content_block_start", "index": self._index, "content_block": block},
        )

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return sse(
            "content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}
        )

    def chunk(self, chunk: Chunk) -> bytes:
        out = b""
        for choice in chunk.choices[:1]:  # Messages has one choice
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content")
            if reasoning:
                if self._open != "thinking":
                    out += self._switch("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                out += self._delta({"type": "thinking_delta", "thinking": reasoning})
            text = delta.get("content")
            if text:
                if self._open != "text":
                    out += self._switch("text", {"type": "text", "text": ""})
                out += self._delta({"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or []:
                key = f"tool:{call.get('index', 0)}"
                fn = call.get("function") or {}
                if self._open != key:
                    block: dict[str, Any] = {
                        "type": "tool_use",
                        "id": call.get("id") or f"toolu_{self._id}_{self._index + 1}",
                        "name": fn.get("name") or "",
                        "input": {},
                    }
                    out += self._switch(key, block)
                if fn.get("arguments"):
                    out += self._delta({"type": "input_json_delta", "partial_json": fn["arguments"]})
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASON.get(str(choice["finish_reason"]), "end_turn")
        return out

    def end(self, usage: Usage) -> bytes:
        out = self._close()
        out += sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason or "end_turn", "stop_sequence": None},
                "usage": usage_wire(usage),
            },
        )
        return out + sse("message_stop", {"type": "message_stop"})
