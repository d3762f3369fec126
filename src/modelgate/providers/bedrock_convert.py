"""Pure translation between the OpenAI chat shape and Amazon Bedrock's Converse API.

The messages are first built as Anthropic blocks by ``anthropic_convert.build_messages`` (which
already merges turns, turns tool results into user turns and validates tool-call arguments), then
each block is renamed to Converse's: ``text`` -> ``{text}``, a base64 image -> ``{image: {format,
source: {bytes}}}``, a PDF -> ``{document}``, ``tool_use`` -> ``{toolUse}``, ``tool_result`` ->
``{toolResult}``. Converse takes image bytes only (or S3 locations): an http(s) image URL is a 400.

Answers: ``output.message.content`` blocks (``text``, ``toolUse``, ``reasoningContent``),
``stopReason`` and ``usage`` (``inputTokens``, ``outputTokens``, ``cacheReadInputTokens``,
``cacheWriteInputTokens``); streams: ``messageStart``, ``contentBlockStart`` (a tool call's id and
name), ``contentBlockDelta`` (``text``, ``toolUse.input`` pieces, ``reasoningContent.text``),
``contentBlockStop``, ``messageStop`` (the stop reason) and ``metadata`` (usage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from modelgate.errors import InvalidRequestError, UpstreamProtocolError
from modelgate.providers.anthropic_convert import build_messages
from modelgate.providers.base import ProviderCall, Usage
from modelgate.providers.checks import token_count
from modelgate.providers.convert import refuse_choices_and_logprobs
from modelgate.wire.chat import NamedToolChoice

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# Bedrock exception names (``x-amzn-ErrorType``, stream ``:exception-type``) -> HTTP status.
EXCEPTION_STATUS = {
    "validationException": 400,
    "accessDeniedException": 403,
    "resourceNotFoundException": 404,
    "modelTimeoutException": 408,
    "throttlingException": 429,
    "serviceQuotaExceededException": 429,
    "modelErrorException": 424,
    "internalServerException": 500,
    "modelStreamErrorException": 502,
    "serviceUnavailableException": 503,
    "modelNotReadyException": 503,
}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def _block(block: dict[str, Any], where: str) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"text": block["text"]}
    if kind == "image":
        source = block["source"]
        if source.get("type") != "base64":
            raise InvalidRequestError(
                f"{where}: this model takes images as base64 data: URLs only", param=where
            )
        fmt = _IMAGE_FORMATS.get(str(source.get("media_type")).lower())
        if fmt is None:
            raise InvalidRequestError(f"{where}: image type must be png, jpeg, gif or webp", param=where)
        return {"image": {"format": fmt, "source": {"bytes": source["data"]}}}
    if kind == "document":
        return {
            "document": {"format": "pdf", "name": "document", "source": {"bytes": block["source"]["data"]}}
        }
    if kind == "tool_use":
        return {"toolUse": {"toolUseId": block["id"], "name": block["name"], "input": block["input"]}}
    if kind == "tool_result":
        return {"toolResult": {"toolUseId": block["tool_use_id"], "content": [{"text": block["content"]}]}}
    raise InvalidRequestError(f"{where}: unsupported content", param=where)


def build_request(call: ProviderCall) -> dict[str, Any]:
    """The ``POST /model/{id}/converse`` body (the model is in the URL)."""
    req = call.request
    refuse_choices_and_logprobs(req)
    if req.response_format is not None and req.response_format.type != "text":
        raise InvalidRequestError(
            "response_format: JSON output is not supported by this model", param="response_format"
        )
    system, turns = build_messages(req)
    messages = [
        {"role": t["role"], "content": [_block(b, f"messages[{i}]") for b in t["content"]]}
        for i, t in enumerate(turns)
    ]
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = [{"text": system}]
    config: dict[str, Any] = {"maxTokens": call.max_tokens}
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.stop_list:
        config["stopSequences"] = req.stop_list
    body["inferenceConfig"] = config
    tool_config = _tool_config(req, messages)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    extra = call.extra.get("body")
    body.update(extra if isinstance(extra, dict) else {})
    return body


def _tool_config(req: Any, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Converse's ``toolConfig``. Bedrock refuses a conversation holding ``toolUse`` /
    ``toolResult`` blocks without one, so a history with tool calls keeps the tools declared (the
    request's, or a bare spec per name used when it declares none); ``tool_choice: none`` (which
    Converse cannot say) then declares them without a ``toolChoice``, and otherwise sends none."""
    used = [b["toolUse"]["name"] for m in messages for b in m["content"] if "toolUse" in b]
    history = used or any("toolResult" in b for m in messages for b in m["content"])
    if req.tools and (req.tool_choice != "none" or history):
        tools = [
            {
                "toolSpec": {
                    "name": t.function.name,
                    **({"description": t.function.description} if t.function.description else {}),
                    "inputSchema": {"json": t.function.parameters or {"type": "object", "properties": {}}},
                }
            }
            for t in req.tools
        ]
    elif history:
        names = list(dict.fromkeys(used)) or ["tool"]
        tools = [{"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object"}}}} for n in names]
    else:
        return None
    config: dict[str, Any] = {"tools": tools}
    if isinstance(req.tool_choice, NamedToolChoice):
        config["toolChoice"] = {"tool": {"name": req.tool_choice.function.name}}
    elif req.tool_choice == "required":
        config["toolChoice"] = {"any": {}}
    elif req.tool_choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def parse_usage(raw: Any, provider: str) -> Usage:
    if not isinstance(raw, dict):
        raise UpstreamProtocolError(f"upstream {provider} reported no usage", provider=provider)

    def count(name: str) -> int:
        return token_count(raw.get(name), provider=provider, field=name)

    cached = count("cacheReadInputTokens")
    written = count("cacheWriteInputTokens")
    return Usage(
        prompt_tokens=count("inputTokens") + cached + written,
        completion_tokens=count("outputTokens"),
        cached_tokens=cached,
        cache_write_5m_tokens=written,  # Converse reports no lifetime: the default 5-minute one
    )


def finish(reason: Any) -> str:
    return STOP_REASONS.get(str(reason), "stop")


def parse_converse(data: Any, provider: str) -> tuple[dict[str, Any], Usage]:
    """A Converse answer -> (OpenAI choice, usage)."""
    message = data.get("output", {}).get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamProtocolError(f"upstream {provider} answered no message", provider=provider)
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            raise UpstreamProtocolError(f"upstream {provider} sent a bad content block", provider=provider)
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            calls.append(
                {
                    "id": str(use.get("toolUseId", "")),
                    "type": "function",
                    "function": {
                        "name": str(use.get("name", "")),
                        "arguments": orjson.dumps(use.get("input", {})).decode(),
                    },
                }
            )
        elif isinstance(block.get("reasoningContent"), dict):
            text = block["reasoningContent"].get("reasoningText", {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if reasoning:
        msg["reasoning_content"] = "".join(reasoning)
    if calls:
        msg["tool_calls"] = calls
    choice = {"index": 0, "message": msg, "finish_reason": finish(data.get("stopReason")), "logprobs": None}
    return choice, parse_usage(data.get("usage"), provider)


@dataclass(slots=True)
class StreamState:
    """ConverseStream events -> OpenAI delta choices."""

    provider: str
    started: bool = False
    finish: str | None = None
    usage: Usage | None = None
    tools: dict[int, int] = field(default_factory=dict)  # content block index -> tool call index

    def feed(self, kind: str, event: dict[str, Any]) -> dict[str, Any] | None:
        if kind == "messageStart":
            self.started = True
            return {"role": "assistant", "content": ""}
        if kind == "contentBlockStart":
            use = event.get("start", {}).get("toolUse")
            if isinstance(use, dict):
                index = len(self.tools)
                self.tools[_index(event)] = index
                call = {
                    "index": index,
                    "id": str(use.get("toolUseId", "")),
                    "type": "function",
                    "function": {"name": str(use.get("name", "")), "arguments": ""},
                }
                return {"tool_calls": [call]}
            return None
        if kind == "contentBlockDelta":
            delta = event.get("delta")
            if not isinstance(delta, dict):
                raise UpstreamProtocolError(
                    f"upstream {self.provider} sent a bad delta", provider=self.provider
                )
            if isinstance(delta.get("text"), str):
                return {"content": delta["text"]}
            if isinstance(delta.get("toolUse"), dict):
                piece = delta["toolUse"].get("input", "")
                index = self.tools.get(_index(event), 0)
                return {"tool_calls": [{"index": index, "function": {"arguments": str(piece)}}]}
            reasoning = delta.get("reasoningContent")
            if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
                return {"reasoning_content": reasoning["text"]}
            return None
        if kind == "messageStop":
            self.finish = finish(event.get("stopReason"))
            return None
        if kind == "metadata":
            self.usage = parse_usage(event.get("usage"), self.provider)
        return None


def _index(event: dict[str, Any]) -> int:
    value = event.get("contentBlockIndex", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
