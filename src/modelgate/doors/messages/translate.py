"""Anthropic Messages -> the chat shape every adapter speaks, for routes that are not Anthropic.

- ``to_chat``: a Messages request as a validated ``ChatRequest`` (system, also mid-conversation in
  place, text/image/document blocks, ``tool_use`` / ``tool_result``, tools and ``tool_choice``,
  ``thinking`` and ``output_config.effort`` as reasoning, ``output_config.format`` as
  ``response_format``, stop sequences). Server-tool history (web search, fetch, code execution,
  search results) becomes text (``doors/messages/history.py``). Server tools that no chat upstream
  can run, and top-level fields no chat upstream understands, are left out and named. Deferred
  tools (``defer_loading``) are offered once the conversation loads them, as Anthropic does.

The answer's direction (a chat completion or chunks as a ``message`` or its events) is
``doors/messages/render.py``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import ValidationError

from modelgate.doors.messages.body import Messages, Prompt
from modelgate.doors.messages.history import block_text, is_history_block, tool_result_text
from modelgate.doors.messages.wire import MessagesRequest
from modelgate.errors import InvalidRequestError
from modelgate.httpkit.errors import format_validation_errors
from modelgate.wire.chat import ChatRequest


def _bad(where: str, what: str) -> InvalidRequestError:
    return InvalidRequestError(f"{where}: {what}", param=where)


def _text_of(blocks: Any, where: str) -> str:
    if isinstance(blocks, str):
        return blocks
    out: list[str] = []
    for i, b in enumerate(blocks or []):
        text = block_text(b)
        if text is None:
            raise _bad(f"{where}[{i}].type", f"{b.get('type')!r} blocks are not supported here")
        if text:
            out.append(text)
    return "\n\n".join(out)


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    src = block.get("source")
    if not isinstance(src, dict):
        raise _bad(f"{where}.source", "Field required")
    if src.get("type") == "base64":
        media, data = src.get("media_type"), src.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise _bad(f"{where}.source", "media_type and data are required for base64 images")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if src.get("type") == "url" and isinstance(src.get("url"), str):
        return {"type": "image_url", "image_url": {"url": src["url"]}}
    raise _bad(f"{where}.source.type", "only base64 and url image sources are supported on this model")


def _document_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    src = block.get("source")
    if not isinstance(src, dict):
        raise _bad(f"{where}.source", "Field required")
    kind = src.get("type")
    if kind == "text" and isinstance(src.get("data"), str):
        return {"type": "text", "text": src["data"]}
    if kind == "base64" and src.get("media_type") == "application/pdf" and isinstance(src.get("data"), str):
        name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        return {
            "type": "file",
            "file": {"file_data": f"data:application/pdf;base64,{src['data']}", "filename": name},
        }
    if kind == "content" and isinstance(src.get("content"), list | str):
        return {"type": "text", "text": _text_of(src["content"], f"{where}.source.content")}
    raise _bad(f"{where}.source.type", "only text and base64 PDF documents are supported on this model")


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    tool_id = block.get("tool_use_id")
    if not isinstance(tool_id, str) or not tool_id:
        raise _bad(f"{where}.tool_use_id", "Field required")
    text = tool_result_text(block.get("content"))
    if block.get("is_error"):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": tool_id, "content": text}


def _user_turn(content: str | list[dict[str, Any]], idx: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        where = f"messages[{idx}].content[{j}]"
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image_part(block, where))
        elif kind == "document":
            parts.append(_document_part(block, where))
        elif kind == "tool_result":
            tools.append(_tool_result(block, where))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        elif is_history_block(kind):
            parts.append({"type": "text", "text": block_text(block) or ""})
        else:
            raise _bad(f"{where}.type", f"{kind!r} blocks are not supported on this model")
    out = tools
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _assistant_turn(content: str | list[dict[str, Any]], idx: int) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        where = f"messages[{idx}].content[{j}]"
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise _bad(where, "tool_use blocks need an id and a name")
            args = block.get("input", {})
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": orjson.dumps(args).decode()},
                }
            )
        elif kind == "redacted_thinking":
            continue
        elif is_history_block(kind):  # a paragraph of its own between the texts around it
            sep = "\n\n" if text and not text[-1].endswith("\n\n") else ""
            text.append(f"{sep}{block_text(block)}\n\n")
        else:
            raise _bad(f"{where}.type", f"{kind!r} blocks are not supported on this model")
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        msg["tool_calls"] = calls
    if reasoning:
        msg["reasoning_content"] = "".join(reasoning)
    if msg["content"] is None and not calls:
        msg["content"] = ""
    return msg


# A tool's name in a tool search's text result (Claude Code's ToolSearch: `<function>{"description":
# "...", "name": "...", "parameters": {...}}</function>` lines).
_NAMED = re.compile(r'"name"\s*:\s*"([^"\\]{1,256})"')


def loaded_tools(prompt: Prompt) -> set[str]:
    """The deferred tools (``defer_loading: true``) the conversation has loaded, as Anthropic's tool
    search does: named by a ``tool_reference`` block or a search's text result in a ``tool_result``,
    or called by an earlier ``tool_use``."""
    names: set[str] = set()
    for m in prompt.messages:
        content = m["content"]
        for block in content if isinstance(content, list) else []:
            kind = block.get("type")
            if kind == "tool_use" and isinstance(block.get("name"), str):
                names.add(block["name"])
            elif kind == "tool_result":
                inner = block.get("content")
                for part in inner if isinstance(inner, list) else [inner]:
                    if isinstance(part, dict) and part.get("type") == "tool_reference":
                        names.add(str(part.get("tool_name")))
                    elif isinstance(part, dict) and isinstance(part.get("text"), str):
                        names.update(_NAMED.findall(part["text"]))
                    elif isinstance(part, str):
                        names.update(_NAMED.findall(part))
    return names


def function_tools(
    tools: list[dict[str, Any]] | None, prompt: Prompt | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Client tools as chat function tools; server tools (a ``type`` other than custom) left out, and
    deferred tools (``defer_loading: true``) until the conversation loads them (``loaded_tools``):
    Anthropic keeps them out of the model's context until then. Claude Code sends an MCP tool once its
    ToolSearch loaded it, and a placeholder the model must never call; a client of Anthropic's own tool
    search sends every deferred tool, often more than the 128 a chat request takes."""
    kept: list[dict[str, Any]] = []
    dropped: list[str] = []
    loaded: set[str] | None = None
    for i, tool in enumerate(tools or []):
        kind = tool.get("type")
        if kind not in (None, "custom"):
            dropped.append(str(tool.get("name") or kind))
            continue
        if tool.get("defer_loading") is True:
            if loaded is None:
                loaded = loaded_tools(prompt) if prompt is not None else set()
            if tool.get("name") not in loaded:
                continue
        if not isinstance(tool.get("name"), str):
            raise _bad(f"tools[{i}].name", "Field required")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"tools[{i}].input_schema", "Field required")
        fn: dict[str, Any] = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        kept.append({"type": "function", "function": fn})
    return kept, dropped


def chat_messages(prompt: Prompt) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": _text_of(prompt.system, "system")})
    for i, m in enumerate(prompt.messages):
        role, content = m["role"], m["content"]
        if role == "user":
            messages.extend(_user_turn(content, i))
        elif role == "system":  # mid-conversation: a system message in the same place
            messages.append({"role": "system", "content": _text_of(content, f"messages[{i}].content")})
        else:
            messages.append(_assistant_turn(content, i))
    return messages


# Anthropic's effort levels -> chat's reasoning_effort.
EFFORT = {"none": "none", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}
EFFORT |= {"xhigh": "xhigh", "max": "xhigh"}
# Fields this translation reads; any other top-level field is left out and named.
_READ = frozenset(MessagesRequest.model_fields)


def _response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    if fmt.get("type") != "json_schema":
        raise _bad(
            "output_config.format.type",
            f"{fmt.get('type')!r} cannot be honoured on this model (json_schema can)",
        )
    spec: dict[str, Any] = {"name": "output", "schema": fmt["schema"], "strict": True}
    return {"type": "json_schema", "json_schema": spec}


def to_chat(msg: Messages, *, reasoning: bool = True, tools_ok: bool = True) -> tuple[ChatRequest, list[str]]:
    """The request as chat, and what was left out, named as request paths (``tools[web_search]``,
    ``context_management``). ``reasoning``: whether the model reasons (an effort is dropped if not);
    ``tools_ok``: whether the route calls tools (if not, offered tools are dropped: the door refuses
    a request that forces one before it gets here)."""
    req, prompt = msg.head, msg.prompt
    tools, dropped_tools = function_tools(prompt.tools, prompt)
    if not tools_ok:
        dropped_tools += [t["function"]["name"] for t in tools]
        tools = []
    dropped = [f"tools[{name}]" for name in dropped_tools]
    dropped += sorted(k for k in req.model_extra or {} if k not in _READ)
    body: dict[str, Any] = {
        "model": req.model,
        "messages": chat_messages(prompt),
        "max_tokens": req.max_tokens,
        "stream": req.stream,
    }
    if tools:
        body["tools"] = tools
        choice = req.tool_choice
        if choice is not None:
            body["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(choice.type) or {
                "type": "function",
                "function": {"name": choice.name},
            }
            if choice.disable_parallel_tool_use:
                body["parallel_tool_calls"] = False
    if req.stop_sequences:
        body["stop"] = req.stop_sequences
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if req.thinking is not None:
        body["thinking"] = req.thinking.model_dump(exclude_none=True)
    config = req.output_config
    if config is not None:
        thinking_off = req.thinking is not None and req.thinking.type == "disabled"
        if config.effort is not None and not thinking_off:
            if reasoning and config.effort in EFFORT:
                body["reasoning_effort"] = EFFORT[config.effort]
            else:
                dropped.append("output_config.effort")
        if config.format is not None:
            body["response_format"] = _response_format(config.format)
        dropped += sorted(f"output_config.{k}" for k in config.model_extra or {})
    if req.metadata is not None and req.metadata.user_id:
        body["user"] = req.metadata.user_id
    try:
        return ChatRequest.model_validate(body), dropped
    except ValidationError as exc:
        message, param = format_validation_errors(list(exc.errors(include_url=False)), body)
        raise InvalidRequestError(message, param=param) from None
