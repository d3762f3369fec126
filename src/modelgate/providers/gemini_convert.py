"""Pure translation between the OpenAI chat shape and the Gemini ``generateContent`` shape.

Request: ``build_request(call)`` returns the ``GenerateContentRequest`` body. Response:
``parse_response(data)`` returns OpenAI choices and ``Usage``; ``StreamState`` turns each streamed
``GenerateContentResponse`` into delta choices. No I/O here, so every mapping is unit-testable.
"""

from __future__ import annotations

import mimetypes
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelgate.catalog.models import Reasoning
from modelgate.errors import InvalidRequestError, UpstreamProtocolError
from modelgate.providers.base import ProviderCall, Usage
from modelgate.wire.chat import (
    AssistantMessage,
    AudioPart,
    ChatRequest,
    FilePart,
    ImagePart,
    NamedToolChoice,
    ResponseFormatJSONObject,
    ResponseFormatJSONSchema,
    SystemMessage,
    ToolMessage,
    UserMessage,
    content_text,
)

FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "LANGUAGE": "content_filter",
    "OTHER": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}

# google.rpc status names, for error objects that carry no numeric code.
RPC_STATUS: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def _data_url(url: str, field_name: str) -> tuple[str, str]:
    """``data:<mime>;base64,<data>`` -> (mime, data)."""
    head, sep, data = url.partition(",")
    if not sep or not head.startswith("data:") or ";base64" not in head:
        raise InvalidRequestError(f"{field_name}: expected a base64 data: URL", param=field_name)
    mime = head[5:].split(";", 1)[0] or "application/octet-stream"
    return mime, data


def _image_part(url: str, field_name: str) -> dict[str, Any]:
    if url.startswith("data:"):
        mime, data = _data_url(url, field_name)
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("http://", "https://", "gs://")):
        guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
        if guessed is None:
            raise InvalidRequestError(
                f"{field_name}: cannot tell the media type of {url[:200]!r} from its name; "
                "send the image as a base64 data: URL instead",
                param=field_name,
            )
        return {"fileData": {"mimeType": guessed, "fileUri": url}}
    raise InvalidRequestError(f"{field_name}: unsupported URL scheme", param=field_name)


def _user_parts(msg: UserMessage, idx: int) -> list[dict[str, Any]]:
    if isinstance(msg.content, str):
        return [{"text": msg.content}]
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(msg.content):
        where = f"messages[{idx}].content[{j}]"
        if isinstance(part, ImagePart):
            parts.append(_image_part(part.image_url.url, f"{where}.image_url.url"))
        elif isinstance(part, AudioPart):
            fmt = part.input_audio.format
            parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": part.input_audio.data}})
        elif isinstance(part, FilePart):
            file_data = part.file.get("file_data")
            if not isinstance(file_data, str):
                raise InvalidRequestError(f"{where}.file.file_data: a base64 data: URL is required")
            mime, data = _data_url(file_data, f"{where}.file.file_data")
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        else:
            parts.append({"text": part.text})
    return parts


def _tool_response(text: str) -> dict[str, Any]:
    """A tool result as the Struct Gemini wants: a JSON object as is, anything else wrapped."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"content": text}
    return value if isinstance(value, dict) else {"content": value}


def build_contents(req: ChatRequest) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(systemInstruction, contents) with consecutive same-role turns merged."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for i, msg in enumerate(req.messages):
        if isinstance(msg, SystemMessage):
            system.append({"text": content_text(msg.content)})
        elif isinstance(msg, UserMessage):
            add("user", _user_parts(msg, i))
        elif isinstance(msg, AssistantMessage):
            parts: list[dict[str, Any]] = []
            text = content_text(msg.content)
            if text:
                parts.append({"text": text})
            for call in msg.tool_calls or []:
                try:
                    args = orjson.loads(call.function.arguments or "{}")
                except orjson.JSONDecodeError as exc:
                    raise InvalidRequestError(
                        f"messages[{i}].tool_calls: arguments of {call.id!r} are not valid JSON",
                        param=f"messages[{i}].tool_calls",
                    ) from exc
                call_names[call.id] = call.function.name
                parts.append({"functionCall": {"name": call.function.name, "args": args}})
            add("model", parts)
        elif isinstance(msg, ToolMessage):
            name = call_names.get(msg.tool_call_id) or msg.name
            if not name:
                raise InvalidRequestError(
                    f"messages[{i}].tool_call_id: no earlier assistant tool call has id {msg.tool_call_id!r}",
                    param=f"messages[{i}].tool_call_id",
                )
            response = _tool_response(content_text(msg.content))
            add("user", [{"functionResponse": {"name": name, "response": response}}])
    return ({"parts": system} if system else None), contents


def thinking_budget(req: ChatRequest, bounds: Reasoning) -> int:
    """The ``thinkingBudget`` for a request: -1 dynamic, 0 off (only where allowed), else clamped."""
    lo, hi = int(bounds.budget_min), int(bounds.budget_max)

    def clamp(value: int) -> int:
        value = max(lo, min(hi, value))
        return value if value > 0 or bounds.can_disable else max(lo, 1)

    off = 0 if bounds.can_disable else lo
    if req.thinking is not None:
        if req.thinking.type == "disabled":
            return off
        if req.thinking.type == "adaptive" or req.thinking.budget_tokens is None:
            return -1
        if req.thinking.budget_tokens == 0:
            return off
        return clamp(req.thinking.budget_tokens)
    effort = req.reasoning_effort
    if effort is None:
        default = int(bounds.budget_default)
        return default if default == -1 or default > 0 or bounds.can_disable else lo
    if effort == "none":
        return off
    if effort == "minimal" and not bounds.can_disable:
        return lo
    budget = bounds.effort_budgets.get(effort)
    return clamp(budget if budget is not None else hi)


def build_request(call: ProviderCall) -> dict[str, Any]:
    req = call.request
    system, contents = build_contents(req)
    gen: dict[str, Any] = {"maxOutputTokens": call.max_tokens}
    optional = {
        "temperature": req.temperature,
        "topP": req.top_p,
        "topK": req.top_k,
        "candidateCount": req.n,
        "seed": req.seed,
        "presencePenalty": req.presence_penalty,
        "frequencyPenalty": req.frequency_penalty,
        "responseLogprobs": req.logprobs,
        "logprobs": req.top_logprobs if req.logprobs else None,
    }
    gen.update({k: v for k, v in optional.items() if v is not None})
    if req.stop_list:
        gen["stopSequences"] = req.stop_list
    fmt = req.response_format
    if isinstance(fmt, ResponseFormatJSONObject | ResponseFormatJSONSchema):
        gen["responseMimeType"] = "application/json"
        if isinstance(fmt, ResponseFormatJSONSchema) and fmt.json_schema.schema_ is not None:
            gen["responseJsonSchema"] = fmt.json_schema.schema_
    if call.model.reasoning is not None:
        gen["thinkingConfig"] = {
            "thinkingBudget": thinking_budget(req, call.model.reasoning),
            "includeThoughts": True,
        }
    body: dict[str, Any] = {"contents": contents, "generationConfig": gen}
    if system is not None:
        body["systemInstruction"] = system
    if req.tools:
        decls = []
        for tool in req.tools:
            decl: dict[str, Any] = {"name": tool.function.name}
            if tool.function.description:
                decl["description"] = tool.function.description
            if tool.function.parameters:
                decl["parametersJsonSchema"] = tool.function.parameters
            decls.append(decl)
        body["tools"] = [{"functionDeclarations": decls}]
    choice = req.tool_choice
    if choice is not None:
        if isinstance(choice, NamedToolChoice):
            fcc: dict[str, Any] = {"mode": "ANY", "allowedFunctionNames": [choice.function.name]}
        else:
            fcc = {"mode": {"none": "NONE", "auto": "AUTO", "required": "ANY"}[choice]}
        body["toolConfig"] = {"functionCallingConfig": fcc}
    extra = call.extra.get("body")
    if isinstance(extra, dict):
        body.update(extra)
    return body


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    thoughts = int(raw.get("thoughtsTokenCount") or 0)
    return Usage(
        prompt_tokens=int(raw.get("promptTokenCount") or 0) + int(raw.get("toolUsePromptTokenCount") or 0),
        completion_tokens=int(raw.get("candidatesTokenCount") or 0) + thoughts,
        reasoning_tokens=thoughts,
        cached_tokens=int(raw.get("cachedContentTokenCount") or 0),
    )


@dataclass(slots=True)
class PartsView:
    """The parts of one candidate (or of one streamed slice of it), sorted by kind."""

    text: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


def split_parts(candidate: dict[str, Any]) -> PartsView:
    view = PartsView()
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            fc = part["functionCall"]
            view.calls.append(
                {
                    "id": fc.get("id") or new_call_id(),
                    "type": "function",
                    "function": {
                        "name": str(fc.get("name", "")),
                        "arguments": orjson.dumps(fc.get("args") or {}).decode(),
                    },
                }
            )
        elif isinstance(part.get("text"), str):
            (view.thoughts if part.get("thought") else view.text).append(part["text"])
    return view


def finish_reason(raw: Any, *, has_calls: bool) -> str | None:
    if raw is None:
        return None
    if has_calls and raw in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        return "tool_calls"
    return FINISH_REASONS.get(str(raw), "stop")


def convert_logprobs(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    chosen = raw.get("chosenCandidates") or []
    tops = raw.get("topCandidates") or []
    out = []
    for i, tok in enumerate(chosen):
        top = tops[i].get("candidates", []) if i < len(tops) and isinstance(tops[i], dict) else []
        out.append(
            {
                "token": tok.get("token", ""),
                "logprob": tok.get("logProbability", 0.0),
                "bytes": list(str(tok.get("token", "")).encode()),
                "top_logprobs": [
                    {
                        "token": t.get("token", ""),
                        "logprob": t.get("logProbability", 0.0),
                        "bytes": list(str(t.get("token", "")).encode()),
                    }
                    for t in top
                ],
            }
        )
    return {"content": out, "refusal": None}


def blocked_choice() -> dict[str, Any]:
    return {
        "index": 0,
        "message": {"role": "assistant", "content": None, "refusal": None},
        "finish_reason": "content_filter",
        "logprobs": None,
    }


def parse_response(data: Any, provider: str) -> tuple[list[dict[str, Any]], Usage]:
    if not isinstance(data, dict):
        raise UpstreamProtocolError(
            f"upstream {provider} answered JSON that is not an object", provider=provider
        )
    usage = parse_usage(data.get("usageMetadata"))
    candidates = data.get("candidates")
    if not candidates:
        feedback = data.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            return [blocked_choice()], usage
        raise UpstreamProtocolError(f"upstream {provider} answered no candidates", provider=provider)
    choices = []
    for pos, cand in enumerate(c for c in candidates if isinstance(c, dict)):
        view = split_parts(cand)
        reason = finish_reason(cand.get("finishReason") or "STOP", has_calls=bool(view.calls))
        content: str | None = "".join(view.text)
        if not view.text and (view.calls or reason == "content_filter"):
            content = None
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if view.calls:
            message["tool_calls"] = view.calls
        if view.thoughts:
            message["reasoning_content"] = "".join(view.thoughts)
        choices.append(
            {
                "index": int(cand.get("index", pos)),
                "message": message,
                "finish_reason": reason,
                "logprobs": convert_logprobs(cand.get("logprobsResult")),
            }
        )
    return choices, usage


@dataclass(slots=True)
class StreamState:
    """Per-stream bookkeeping: which choices have sent their role, tool-call indexes, usage."""

    started: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    call_counts: dict[int, int] = field(default_factory=dict)
    usage: Usage | None = None

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if "usageMetadata" in event:
            self.usage = parse_usage(event["usageMetadata"])
        candidates = event.get("candidates")
        if not candidates:
            feedback = event.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason") and 0 not in self.finished:
                self.started.add(0)
                self.finished.add(0)
                return [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": None},
                        "finish_reason": "content_filter",
                        "logprobs": None,
                    }
                ]
            return []
        out = []
        for pos, cand in enumerate(c for c in candidates if isinstance(c, dict)):
            index = int(cand.get("index", pos))
            view = split_parts(cand)
            delta: dict[str, Any] = {}
            if index not in self.started:
                self.started.add(index)
                delta["role"] = "assistant"
                delta["content"] = ""
            if view.text:
                delta["content"] = "".join(view.text)
            if view.thoughts:
                delta["reasoning_content"] = "".join(view.thoughts)
            if view.calls:
                first = self.call_counts.get(index, 0)
                delta["tool_calls"] = [{"index": first + k, **c} for k, c in enumerate(view.calls)]
                self.call_counts[index] = first + len(view.calls)
            reason = finish_reason(cand.get("finishReason"), has_calls=index in self.call_counts)
            if reason is not None:
                self.finished.add(index)
            if delta or reason is not None:
                out.append({"index": index, "delta": delta, "finish_reason": reason, "logprobs": None})
        return out
