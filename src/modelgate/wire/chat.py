"""Pydantic models of the public ``POST /v1/chat/completions`` request.

Tolerant where the public API is tolerant (unknown top-level fields are accepted and ignored, as the
OpenAI-compatible clients send vendor extras), strict on every documented bound and enum
(vendored as ``tests/specs/aimlapi/chat-*.json``). Responses are built as plain dicts in
``gateway/render.py``: they are hot-path output and never need validating.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from modelgate.wire.numbers import Integer, Number

_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TextPart(_Wire):
    type: Literal["text"]
    text: str


class ImageURL(_Wire):
    url: str
    detail: Literal["low", "high", "auto"] | None = None


class ImagePart(_Wire):
    type: Literal["image_url"]
    image_url: ImageURL


class RefusalPart(_Wire):
    type: Literal["refusal"]
    refusal: str


class InputAudio(_Wire):
    data: str
    format: str


class AudioPart(_Wire):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(_Wire):
    type: Literal["file"]
    file: dict[str, Any]


UserPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


class FunctionCall(_Wire):
    name: str
    arguments: str


class ToolCall(_Wire):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Wire):
    role: Literal["system", "developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Wire):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(_Wire):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    reasoning_content: str | None = None

    @model_validator(mode="after")
    def _content_or_calls(self) -> AssistantMessage:
        if self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        return self


class ToolMessage(_Wire):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str
    name: str | None = None


Message = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]


class StreamOptions(_Wire):
    include_usage: StrictBool = False


class ResponseFormatText(_Wire):
    type: Literal["text"]


class ResponseFormatJSONObject(_Wire):
    type: Literal["json_object"]


class JSONSchemaSpec(_Wire):
    name: str = Field(pattern=_NAME_PATTERN)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormatJSONSchema(_Wire):
    type: Literal["json_schema"]
    json_schema: JSONSchemaSpec


ResponseFormat = Annotated[
    ResponseFormatText | ResponseFormatJSONObject | ResponseFormatJSONSchema, Field(discriminator="type")
]


class FunctionDef(_Wire):
    name: str = Field(pattern=_NAME_PATTERN)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Wire):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Wire):
    name: str


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: NamedFunction


class Prediction(_Wire):
    type: Literal["content"]
    content: str | list[TextPart]


class Thinking(_Wire):
    """Anthropic-style thinking switch, accepted on every model and mapped per provider."""

    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: Integer | None = Field(default=None, ge=0)


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


# The largest output cap a request may ask for (a token count must fit the int32 columns); models
# with an ``outputMax`` in the catalogue refuse anything above theirs.
MAX_OUTPUT_TOKENS = 2**31 - 1


class ChatRequest(_Wire):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: Integer | None = Field(default=None, ge=1, le=MAX_OUTPUT_TOKENS)
    max_completion_tokens: Integer | None = Field(default=None, ge=1, le=MAX_OUTPUT_TOKENS)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: Integer | None = Field(default=None, ge=1, le=128)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    top_p: Number | None = Field(default=None, ge=0.01, le=1)
    top_k: Integer | None = Field(default=None, ge=1, le=2**31 - 1)
    stop: str | list[str] | None = None
    frequency_penalty: Number | None = Field(default=None, ge=-2, le=2)
    presence_penalty: Number | None = Field(default=None, ge=-2, le=2)
    seed: Integer | None = Field(default=None, ge=1, le=2**63 - 1)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    prediction: Prediction | None = None
    provider: str | None = None
    logprobs: StrictBool | None = None
    top_logprobs: Integer | None = Field(default=None, ge=0, le=20)
    logit_bias: dict[str, float] | None = None
    reasoning_effort: ReasoningEffort | None = None
    thinking: Thinking | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _cross_field_rules(self) -> ChatRequest:
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop: at most 4 stop sequences are allowed")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs: requires logprobs to be true")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options: only allowed when stream is true")
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError(
                    f"tool_choice: function '{self.tool_choice.function.name}' is not among the tools"
                )
        elif self.tool_choice in ("auto", "required") and not self.tools:
            raise ValueError(f"tool_choice: '{self.tool_choice}' requires tools")
        return self

    @property
    def output_limit(self) -> int | None:
        """The client's explicit cap: ``max_completion_tokens`` wins over ``max_tokens``."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


def content_text(content: str | list[Any] | None) -> str:
    """The plain text of a message content (string, or the text/refusal parts of an array)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    out: list[str] = []
    for part in content:
        text = getattr(part, "text", None) or getattr(part, "refusal", None)
        if text:
            out.append(text)
    return "".join(out)
