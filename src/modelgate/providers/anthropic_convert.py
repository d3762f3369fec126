"""Pure translation between the OpenAI chat shape and the Anthropic Messages API.

``build_request(call)`` returns the ``POST /v1/messages`` body (and rejects impossible combinations
with an ``InvalidRequestError`` naming the fields); ``parse_message`` turns a Message into an OpenAI
choice; ``StreamState`` turns the named SSE events into delta choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from modelgate.catalog.models import Reasoning
from modelgate.errors import InvalidRequestError, UpstreamProtocolError
from modelgate.providers.anthropic_structured import output_tool, structured_output
from modelgate.providers.base import ProviderCall, Usage
from modelgate.providers.checks import token_count
from modelgate.providers.convert import (
    append_turn,
    image_source,
    refuse_choices_and_logprobs,
    tool_call_arguments,
)
from modelgate.wire.chat import (
    AssistantMessage,
    AudioPart,
    ChatRequest,
    FilePart,
    ImagePart,
    NamedToolChoice,
    SystemMessage,
    ToolMessage,
    UserMessage,
    content_text,
)

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


def _image_block(url: str, where: str) -> dict[str, Any]:
    src = image_source(url, where)
    if src.data is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": src.media_type, "data": src.data}}
    return {"type": "image", "source": {"type": "url", "url": src.url}}


def _user_blocks(msg: UserMessage, idx: int) -> list[dict[str, Any]]:
    if isinstance(msg.content, str):
        return [{"type": "text", "text": msg.content}] if msg.content else []
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(msg.content):
        where = f"messages[{idx}].content[{j}]"
        if isinstance(part, ImagePart):
            blocks.append(_image_block(part.image_url.url, f"{where}.image_url.url"))
        elif isinstance(part, AudioPart):
            raise InvalidRequestError(f"{where}: audio input is not supported by this model", param=where)
        elif isinstance(part, FilePart):
            data = part.file.get("file_data")
            if not isinstance(data, str) or not data.startswith("data:application/pdf;base64,"):
                raise InvalidRequestError(
                    f"{where}.file: only base64 PDF data: URLs are supported", param=where
                )
            source = {"type": "base64", "media_type": "application/pdf", "data": data.partition(",")[2]}
            blocks.append({"type": "document", "source": source})
        elif part.text:
            blocks.append({"type": "text", "text": part.text})
    return blocks


def build_messages(req: ChatRequest) -> tuple[str | None, list[dict[str, Any]]]:
    """(system, messages): tool results become user turns; consecutive same-role turns merged."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        append_turn(messages, role, blocks, key="content")

    for i, msg in enumerate(req.messages):
        if isinstance(msg, SystemMessage):
            system.append(content_text(msg.content))
        elif isinstance(msg, UserMessage):
            add("user", _user_blocks(msg, i))
        elif isinstance(msg, AssistantMessage):
            blocks: list[dict[str, Any]] = []
            text = content_text(msg.content)
            if text:
                blocks.append({"type": "text", "text": text})
            for call in msg.tool_calls or []:
                args = tool_call_arguments(call, i)
                blocks.append({"type": "tool_use", "id": call.id, "name": call.function.name, "input": args})
            add("assistant", blocks)
        elif isinstance(msg, ToolMessage):
            result = {
                "type": "tool_result",
                "tool_use_id": msg.tool_call_id,
                "content": content_text(msg.content),
            }
            add("user", [result])
    return ("\n\n".join(system) if system else None), messages


def _thinking(req: ChatRequest, bounds: Reasoning | None, max_tokens: int) -> dict[str, Any] | None:
    """The ``thinking`` parameter, or None; impossible combinations raise InvalidRequestError."""
    explicit = req.thinking
    effort = req.reasoning_effort
    if explicit is not None and explicit.type == "disabled":
        return None
    if explicit is None and effort in (None, "none"):
        return None
    if bounds is None:
        if explicit is not None and explicit.type == "adaptive" and effort in (None, "none"):
            return None  # adaptive: the model decides, and this one does not think
        field_name = "thinking" if explicit is not None else "reasoning_effort"
        raise InvalidRequestError(
            f"{field_name}: this model does not support extended thinking", param=field_name
        )
    lo, hi = max(1024, bounds.budget_min), bounds.budget_max
    if explicit is not None and explicit.type == "enabled" and explicit.budget_tokens is not None:
        budget = explicit.budget_tokens
        if budget < lo:
            raise InvalidRequestError(
                f"thinking.budget_tokens: must be at least {lo} (got {budget})",
                param="thinking.budget_tokens",
            )
        if budget >= max_tokens:
            raise InvalidRequestError(
                f"thinking.budget_tokens ({budget}) must be less than max_tokens ({max_tokens}); "
                "raise max_tokens (or max_completion_tokens)",
                param="thinking.budget_tokens",
            )
        return {"type": "enabled", "budget_tokens": min(budget, hi)}
    # An effort level (or thinking enabled without a budget, or adaptive): fit the cap if possible.
    level = effort if effort not in (None, "none") else "medium"
    wanted = bounds.effort_budgets.get(str(level), hi)
    budget = max(lo, min(hi, wanted, max_tokens - 1))
    if budget >= max_tokens:
        field_name = "reasoning_effort" if explicit is None else "thinking"
        raise InvalidRequestError(
            f"{field_name}: extended thinking needs a budget of at least {lo} tokens, "
            f"which must be less than max_tokens ({max_tokens}); raise max_tokens (or max_completion_tokens)",
            param=field_name,
        )
    return {"type": "enabled", "budget_tokens": budget}


def build_request(call: ProviderCall) -> dict[str, Any]:
    req = call.request
    refuse_choices_and_logprobs(req)
    if req.temperature is not None and req.temperature > 1:
        raise InvalidRequestError("temperature: must be between 0 and 1 for this model", param="temperature")
    system, messages = build_messages(req)
    body: dict[str, Any] = {"model": call.upstream_model, "max_tokens": call.max_tokens, "messages": messages}
    if system:
        body["system"] = system
    thinking = _thinking(req, call.model.reasoning, call.max_tokens)
    if thinking is not None:
        body["thinking"] = thinking
        _check_thinking_compatible(req)
    optional = {"temperature": req.temperature, "top_p": req.top_p, "top_k": req.top_k}
    body.update({k: v for k, v in optional.items() if v is not None})
    if req.stop_list:
        body["stop_sequences"] = req.stop_list
    if req.tools:
        body["tools"] = [
            {
                "name": t.function.name,
                **({"description": t.function.description} if t.function.description else {}),
                "input_schema": t.function.parameters or {"type": "object", "properties": {}},
            }
            for t in req.tools
        ]
    tool_choice = _tool_choice(req)
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if output_tool(req) is not None:
        structured_output(req, body, forced=thinking is None)
    if req.user:
        body["metadata"] = {"user_id": req.user}
    extra = call.extra.get("body")
    if isinstance(extra, dict):
        body.update(extra)
    return body


def _check_thinking_compatible(req: ChatRequest) -> None:
    if req.temperature is not None and req.temperature != 1:
        raise InvalidRequestError(
            f"temperature: must be 1 (or unset) when thinking is enabled (got {req.temperature:g})",
            param="temperature",
        )
    if req.top_k is not None:
        raise InvalidRequestError("top_k: cannot be set when thinking is enabled", param="top_k")
    if req.top_p is not None and req.top_p < 0.95:
        raise InvalidRequestError("top_p: must be between 0.95 and 1 when thinking is enabled", param="top_p")
    if req.tool_choice == "required" or isinstance(req.tool_choice, NamedToolChoice):
        raise InvalidRequestError(
            "tool_choice: forcing a tool ('required' or a named function) is not possible "
            "when thinking is enabled",
            param="tool_choice",
        )


def _tool_choice(req: ChatRequest) -> dict[str, Any] | None:
    choice = req.tool_choice
    out: dict[str, Any] | None
    if isinstance(choice, NamedToolChoice):
        out = {"type": "tool", "name": choice.function.name}
    elif choice is None:
        out = {"type": "auto"} if req.tools and req.parallel_tool_calls is False else None
    else:
        out = {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    if out is not None and out["type"] != "none" and req.parallel_tool_calls is False:
        out["disable_parallel_tool_use"] = True
    if out is not None and not req.tools:
        return None
    return out


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
