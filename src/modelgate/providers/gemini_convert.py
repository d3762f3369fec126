"""OpenAI chat request -> Gemini ``GenerateContentRequest`` (pure; the response side is
``gemini_response``). ``build_request(call)`` returns the body; options Gemini cannot honour raise
``InvalidRequestError`` naming the field.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.catalog.models import Reasoning
from modelgate.errors import InvalidRequestError
from modelgate.providers.base import ProviderCall
from modelgate.providers.convert import append_turn, image_source, parse_data_url, tool_call_arguments
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


def _image_part(url: str, field_name: str) -> dict[str, Any]:
    src = image_source(url, field_name, schemes=("http://", "https://", "gs://"), typed=True)
    if src.data is not None:
        return {"inlineData": {"mimeType": src.media_type, "data": src.data}}
    return {"fileData": {"mimeType": src.media_type, "fileUri": src.url}}


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
            mime, data = parse_data_url(file_data, f"{where}.file.file_data")
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
        append_turn(contents, role, parts, key="parts")

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
                args = tool_call_arguments(call, i)
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
