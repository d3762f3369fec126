"""Pure translation of Anthropic Messages answers into the OpenAI chat shape.

``parse_message`` turns a Message into an OpenAI choice and its usage; ``StreamState`` turns the
named SSE events into delta choices; ``parse_usage`` reads the token counts by category (cache
reads, writes by lifetime, server-tool uses). The request side is ``anthropic_convert``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.base import Usage
from modelgate.providers.checks import token_count

STOP_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Anthropic error ``type`` -> the HTTP status it stands for (for ``error`` events after a 200).
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def parse_usage(raw: Any, provider: str = "anthropic") -> Usage:
    if not isinstance(raw, dict):
        return Usage()

    def count(field: str) -> int:
        return token_count(raw.get(field), provider=provider, field=field)

    cache_read = count("cache_read_input_tokens")
    creation = count("cache_creation_input_tokens")
    # cache_creation splits the writes by lifetime; without it every write is a 5-minute one.
    by_ttl = raw.get("cache_creation")
    write_1h = 0
    if isinstance(by_ttl, dict):
        write_1h = token_count(
            by_ttl.get("ephemeral_1h_input_tokens"), provider=provider, field="ephemeral_1h_input_tokens"
        )
        split = write_1h + token_count(
            by_ttl.get("ephemeral_5m_input_tokens"), provider=provider, field="ephemeral_5m_input_tokens"
        )
        creation = max(creation, split)
    write_1h = min(write_1h, creation)
    return Usage(
        prompt_tokens=count("input_tokens") + cache_read + creation,
        completion_tokens=count("output_tokens"),
        cached_tokens=cache_read,
        cache_write_5m_tokens=creation - write_1h,
        cache_write_1h_tokens=write_1h,
        uses=server_tool_uses(raw.get("server_tool_use"), provider),
    )


# Anthropic's server_tool_use counters -> the price sheet's per-use names.
_SERVER_TOOLS = {"web_search_requests": "web_search", "web_fetch_requests": "web_fetch"}


def server_tool_uses(raw: Any, provider: str) -> dict[str, int] | None:
    if not isinstance(raw, dict):
        return None
    uses = {
        name: n
        for field, name in _SERVER_TOOLS.items()
        if (n := token_count(raw.get(field), provider=provider, field=field))
    }
    return uses or None


def stop_reason(raw: Any) -> str:
    return STOP_REASONS.get(str(raw), "stop") if raw is not None else "stop"


def parse_message(data: Any, provider: str, output: str | None = None) -> tuple[dict[str, Any], Usage]:
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise UpstreamProtocolError(f"upstream {provider} answered JSON without content", provider=provider)
    text: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    structured = False
    for block in data["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind == "thinking":
            thinking.append(str(block.get("thinking", "")))
        elif kind == "tool_use" and output is not None and block.get("name") == output:
            text.append(orjson.dumps(block.get("input") or {}).decode())
            structured = True
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {"name": str(block.get("name", "")), "arguments": arguments},
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    finish = stop_reason(data.get("stop_reason"))
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": "stop" if structured and not calls and finish == "tool_calls" else finish,
        "logprobs": None,
    }
    return choice, parse_usage(data.get("usage"), provider)


@dataclass(slots=True)
class StreamState:
    """Bookkeeping across the named events of one Messages stream."""

    usage_raw: dict[str, Any] = field(default_factory=dict)
    tool_index: dict[int, int] = field(default_factory=dict)  # content block index -> tool call index
    output: str | None = None  # the structured-output tool, whose input is streamed as content
    output_blocks: set[int] = field(default_factory=set)
    started: bool = False
    finish: str | None = None
    stopped: bool = False
    provider: str = "anthropic"

    @property
    def usage(self) -> Usage:
        return parse_usage(self.usage_raw, self.provider)

    def feed(self, kind: str, event: dict[str, Any]) -> dict[str, Any] | None:
        """The delta (or None) for one event. ``error`` events are handled by the caller."""
        delta: dict[str, Any] = {}
        if kind == "message_start":
            message = event.get("message") or {}
            self.usage_raw.update(message.get("usage") or {})
            self.started = True
            return {"role": "assistant", "content": ""}
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if (
                block.get("type") == "tool_use"
                and self.output is not None
                and block.get("name") == self.output
            ):
                self.output_blocks.add(int(event.get("index", 0)))
            elif block.get("type") == "tool_use":
                index = len(self.tool_index)
                self.tool_index[int(event.get("index", 0))] = index
                function = {"name": block.get("name", ""), "arguments": ""}
                delta["tool_calls"] = [
                    {"index": index, "id": block.get("id", ""), "type": "function", "function": function}
                ]
            elif block.get("type") == "text" and block.get("text"):
                delta["content"] = block["text"]
        elif kind == "content_block_delta":
            d = event.get("delta") or {}
            dtype = d.get("type")
            if dtype == "text_delta":
                delta["content"] = d.get("text", "")
            elif dtype == "thinking_delta":
                delta["reasoning_content"] = d.get("thinking", "")
            elif (
                dtype == "input_json_delta"
                and d.get("partial_json")
                and (int(event.get("index", 0)) in self.output_blocks)
            ):
                delta["content"] = d["partial_json"]
            elif dtype == "input_json_delta" and d.get("partial_json"):
                index = self.tool_index.get(int(event.get("index", 0)), 0)
                delta["tool_calls"] = [{"index": index, "function": {"arguments": d["partial_json"]}}]
        elif kind == "message_delta":
            self.usage_raw.update(event.get("usage") or {})
            self.finish = stop_reason((event.get("delta") or {}).get("stop_reason"))
            if self.finish == "tool_calls" and self.output_blocks and not self.tool_index:
                self.finish = "stop"  # the structured answer, not a tool call
        elif kind == "message_stop":
            self.stopped = True
        return delta or None
