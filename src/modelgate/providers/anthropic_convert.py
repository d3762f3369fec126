"""Pure translation of an OpenAI chat request into the Anthropic Messages API.

``build_request(call)`` returns the ``POST /v1/messages`` body (and rejects impossible combinations
with an ``InvalidRequestError`` naming the fields). The answers are read back by
``anthropic_response``."""

from __future__ import annotations

from typing import Any

from modelgate.catalog.models import Reasoning
from modelgate.errors import InvalidRequestError
from modelgate.providers.anthropic_structured import output_tool, structured_output
from modelgate.providers.base import ProviderCall
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
