"""OpenAI Responses request -> the chat shape every adapter speaks, for routes that do not speak
Responses natively.

- ``to_chat``: ``instructions`` + the conversation (``previous_response_id``'s stored items, then
  ``input``: messages with ``input_text`` / ``input_image`` / ``input_file`` parts, ``function_call``,
  ``function_call_output``, ``reasoning`` summaries, ``item_reference``s resolved from the store,
  ``compaction`` items made by ``/v1/responses/compact`` as the summary they seal),
  function tools and ``tool_choice``, ``text.format``, ``reasoning.effort``, sampling and the output
  cap, as a validated ``ChatRequest``.
- Hosted tools (web search, file search, code interpreter, computer use, MCP, custom tools…) that no
  chat upstream can run are left out and named (the door lists them in a response header); items
  those tools produced earlier in a conversation are skipped.
- ``left_out``: the request's fields the translation does not carry (``prompt_cache_key``,
  ``include``…, and unknown top-level fields such as Codex's ``client_metadata``), for the same
  header: chat upstreams differ too much in what they tolerate for the gateway to add them.

What sizes the credit hold (the prompt's bound, hosted tools' fees) is ``doors/responses/estimate.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from modelgate.doors.responses import namespaces
from modelgate.doors.responses.wire import ResponsesRequest
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.httpkit.errors import format_validation_errors
from modelgate.wire.chat import ChatRequest

# Items that hosted tools (and their results) leave in a conversation: nothing a chat upstream can
# replay, so a translated route skips them.
HOSTED_ITEMS = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "code_interpreter_call",
        "image_generation_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "custom_tool_call",
        "custom_tool_call_output",
        "tool_search_call",
        "tool_search_output",
    }
)
_IMAGE_DETAIL = {"low", "high", "auto"}
# How a compaction item's summary reaches a chat upstream: a user message that says what it is.
SUMMARY_PREFIX = "Summary of the conversation so far (earlier turns were compacted into it):\n\n"


def _bad(where: str, what: str) -> InvalidRequestError:
    return InvalidRequestError(f"{where}: {what}", param=where)


def _text(part: Mapping[str, Any], where: str) -> str:
    text = part.get("text")
    if not isinstance(text, str):
        raise _bad(f"{where}.text", "Field required")
    return text


def _user_part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _bad(where, "must be a content part object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _text(part, where)}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            what = (
                "file_id images are not supported on this model" if part.get("file_id") else "Field required"
            )
            raise _bad(f"{where}.image_url", what)
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in _IMAGE_DETAIL:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise _bad(f"{where}.file_data", "only inline file_data files are supported on this model")
        if not data.startswith("data:"):
            data = f"data:application/pdf;base64,{data}"
        name = part.get("filename") if isinstance(part.get("filename"), str) else "file.pdf"
        return {"type": "file", "file": {"file_data": data, "filename": name}}
    raise _bad(f"{where}.type", f"{kind!r} content parts are not supported on this model")


def _plain(content: Any, where: str) -> str:
    """Text of a system/developer/assistant content (string or text-like parts)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(where, "must be a string or a list of content parts")
    out: list[str] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise _bad(f"{where}[{j}]", "must be a content part object")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            out.append(_text(part, f"{where}[{j}]"))
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            out.append(part["refusal"])
        else:
            raise _bad(f"{where}[{j}].type", f"{kind!r} parts are not supported in this message")
    return "".join(out)


def _tool_output(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    if not isinstance(output, list):
        raise _bad(where, "must be a string or a list of content parts")
    out: list[str] = []
    for part in output:
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text"):
            out.append(str(part.get("text", "")))
        elif isinstance(part, dict) and part.get("type") == "input_image":
            out.append("[image]")
        else:
            out.append(orjson.dumps(part).decode())
    return "\n".join(out)


def _reasoning_text(item: Mapping[str, Any]) -> str:
    parts = [*(item.get("summary") or []), *(item.get("content") or [])]
    return "\n\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("text"))


class _Conversation:
    """Chat messages built item by item (function calls merge into one assistant turn)."""

    def __init__(
        self, refs: Mapping[str, dict[str, Any]], summaries: Mapping[str, str | None] | None = None
    ) -> None:
        self.messages: list[dict[str, Any]] = []
        self.refs = refs
        self.summaries = summaries or {}
        self._reasoning: list[str] = []

    def _assistant(self, *, with_calls: bool) -> dict[str, Any]:
        last = self.messages[-1] if self.messages else None
        if with_calls and last is not None and last["role"] == "assistant":
            return last
        msg: dict[str, Any] = {"role": "assistant", "content": None}
        if self._reasoning:
            msg["reasoning_content"] = "\n\n".join(self._reasoning)
            self._reasoning = []
        self.messages.append(msg)
        return msg

    def add(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise _bad(where, "must be an item object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            self._message(item, where)
        elif kind == "function_call":
            call_id, name, args = item.get("call_id"), item.get("name"), item.get("arguments", "")
            if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(args, str):
                raise _bad(where, "a function_call item needs call_id, name and arguments (a string)")
            if isinstance(item.get("namespace"), str) and item["namespace"]:
                name = namespaces.joined(item["namespace"], name)
            msg = self._assistant(with_calls=True)
            msg.setdefault("tool_calls", []).append(
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            )
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise _bad(f"{where}.call_id", "Field required")
            content = _tool_output(item.get("output", ""), f"{where}.output")
            self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
        elif kind == "reasoning":
            text = _reasoning_text(item)
            if text:
                self._reasoning.append(text)
        elif kind == "item_reference":
            ref = item.get("id")
            found = self.refs.get(ref) if isinstance(ref, str) else None
            if found is None:
                raise NotFoundError(f"{where}: item with id {ref!r} not found", param=f"{where}.id")
            self.add(found, where)
        elif kind == "compaction":
            self.messages.append({"role": "user", "content": self._summary(item, where)})
        elif kind in HOSTED_ITEMS:
            return
        else:
            raise _bad(f"{where}.type", f"{kind!r} items are not supported on this model")

    def _summary(self, item: dict[str, Any], where: str) -> str:
        """A ``compaction`` item as the summary it seals (``doors/responses/compact.py``): only one
        this gateway made for this account opens; any other is a 400."""
        sealed = item.get("encrypted_content")
        if not isinstance(sealed, str):
            raise _bad(f"{where}.encrypted_content", "Field required")
        summary = self.summaries.get(sealed)
        if summary is None:
            raise InvalidRequestError(
                f"{where}.encrypted_content: this compaction item was not made by this gateway for this "
                "account, or it was altered (on this model only compactions from this gateway's "
                "/v1/responses/compact can be read)",
                param=f"{where}.encrypted_content",
                code="invalid_encrypted_content",
            )
        return SUMMARY_PREFIX + summary

    def _message(self, item: dict[str, Any], where: str) -> None:
        role, content = item.get("role"), item.get("content")
        if content is None:
            raise _bad(f"{where}.content", "Field required")
        if role == "user":
            if isinstance(content, str):
                self.messages.append({"role": "user", "content": content})
                return
            if not isinstance(content, list):
                raise _bad(f"{where}.content", "must be a string or a list of content parts")
            parts = [_user_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
            self.messages.append({"role": "user", "content": parts})
        elif role in ("system", "developer"):
            self.messages.append({"role": "system", "content": _plain(content, f"{where}.content")})
        elif role == "assistant":
            text = _plain(content, f"{where}.content")
            last = self.messages[-1] if self.messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") is None:
                last["content"] = (last["content"] or "") + text
                return
            self._assistant(with_calls=False)["content"] = text
        else:
            raise _bad(f"{where}.role", f"{role!r} is not one of user, assistant, system, developer")

    def finish(self) -> list[dict[str, Any]]:
        for msg in self.messages:
            if msg["role"] == "assistant" and msg["content"] is None and not msg.get("tool_calls"):
                msg["content"] = ""
        return self.messages


def hosted_name(tool: Mapping[str, Any]) -> str:
    """How a hosted tool is named in the ``x-modelgate-dropped-tools`` header."""
    kind = str(tool.get("type"))
    label = tool.get("name") or tool.get("server_label")
    return f"{kind}:{label}" if isinstance(label, str) and label else kind


def function_tools(req: ResponsesRequest) -> tuple[list[dict[str, Any]], list[str]]:
    """Function tools in the chat shape, and the hosted tools left out."""
    kept: list[dict[str, Any]] = []
    dropped: list[str] = []
    for i, tool in enumerate(req.tools or []):
        if tool.get("type") == "namespace":  # Codex CLI's; chat has none (doors/responses/namespaces.py)
            inner, left = namespaces.flatten(tool, f"tools[{i}]")
            kept += inner
            dropped += left
            continue
        if tool.get("type") != "function":
            dropped.append(hosted_name(tool))
            continue
        fn: dict[str, Any] = {"name": tool["name"]}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                fn[key] = tool[key]
        kept.append({"type": "function", "function": fn})
    return kept, dropped


def _tool_choice(req: ResponsesRequest, tools: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """The chat ``tool_choice`` (None: the upstream's default) and the tools it leaves callable."""
    choice = req.tool_choice
    if choice is None or not tools:
        return None, tools
    if isinstance(choice, str):
        return choice, tools
    kind = choice.get("type")
    if kind == "function":
        name = choice.get("name")
        if not isinstance(name, str):
            raise _bad("tool_choice.name", "Field required")
        return {"type": "function", "function": {"name": name}}, tools
    if kind == "allowed_tools":
        allowed = {t.get("name") for t in choice.get("tools") or [] if isinstance(t, dict)}
        narrowed = [t for t in tools if t["function"]["name"] in allowed]
        mode = choice.get("mode") if choice.get("mode") in ("auto", "required") else "auto"
        return (mode if narrowed else None), narrowed
    return None, tools  # a hosted tool forced: it is not there, let the model answer


def conversation(
    req: ResponsesRequest,
    history: list[dict[str, Any]],
    refs: Mapping[str, dict[str, Any]],
    summaries: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    conv = _Conversation(refs, summaries)
    if req.instructions:
        conv.messages.append({"role": "system", "content": req.instructions})
    for i, item in enumerate(history):
        conv.add(item, f"previous_response_id (item {i})")
    for i, item in enumerate(req.items):
        conv.add(item, f"input[{i}]")
    return conv.finish()


# Responses fields with no chat equivalent every OpenAI-compatible upstream accepts: set, they are
# named as left out (``x-modelgate-dropped``), never sent (a strict upstream refuses unknown fields).
_NOT_CARRIED = ("prompt_cache_key", "service_tier", "include", "max_tool_calls", "top_logprobs")


def left_out(req: ResponsesRequest) -> list[str]:
    """The request paths a translated route leaves out, apart from tools."""
    out = [name for name in _NOT_CARRIED if getattr(req, name) not in (None, [])]
    if req.text is not None and req.text.verbosity is not None:
        out.append("text.verbosity")
    return out + sorted(req.model_extra or {})


def to_chat(
    req: ResponsesRequest,
    history: list[dict[str, Any]],
    refs: Mapping[str, dict[str, Any]],
    *,
    stream: bool,
    tools_ok: bool = True,
    summaries: Mapping[str, str | None] | None = None,
) -> tuple[ChatRequest, list[str]]:
    """The request as chat, and the names of the tools left out: hosted ones, and every function
    tool when ``tools_ok`` is False (a model or route that cannot call tools)."""
    tools, dropped = function_tools(req)
    if not tools_ok:
        dropped += [t["function"]["name"] for t in tools]
        tools = []
    choice, tools = _tool_choice(req, tools)
    messages = conversation(req, history, refs, summaries)
    if not messages:
        raise _bad("input", "the conversation is empty: send at least one input item")
    body: dict[str, Any] = {"model": req.model, "messages": messages, "stream": stream}
    if req.max_output_tokens is not None:
        body["max_tokens"] = req.max_output_tokens
    if tools:
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    fmt = req.format
    if fmt is not None and fmt.type == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif fmt is not None and fmt.type == "json_schema":
        spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema_}
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        if fmt.description is not None:
            spec["description"] = fmt.description
        body["response_format"] = {"type": "json_schema", "json_schema": spec}
    if req.reasoning is not None and req.reasoning.effort is not None:
        body["reasoning_effort"] = req.reasoning.effort
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = max(req.top_p, 0.01)
    user = req.safety_identifier or req.user
    if user:
        body["user"] = user
    try:
        return ChatRequest.model_validate(body), dropped
    except ValidationError as exc:
        message, param = format_validation_errors(list(exc.errors(include_url=False)), body)
        raise InvalidRequestError(message, param=param) from None
