"""The OpenAI Responses API request (``POST /v1/responses``), as its public reference defines it.

Tolerant where OpenAI is: unknown top-level fields and item fields are kept (a pass-through route
forwards the body unchanged, so new features survive). Input items and tools stay plain dicts here;
each item is checked by type when the request is translated for a chat upstream
(``doors/responses/translate.py``). What modelgate cannot do at all (``background``, stored
``prompt`` templates, ``conversation`` objects) is refused here with a 400 naming the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from modelgate.wire.numbers import Integer, Number

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _schema_named(self) -> TextFormat:
        if self.type == "json_schema" and (self.name is None or self.schema_ is None):
            raise ValueError("a json_schema format needs a name and a schema")
        return self


class TextConfig(_Open):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(_Open):
    effort: ReasoningEffort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class StreamOptions(_Open):
    include_obfuscation: StrictBool | None = None


def _typed_items(items: list[dict[str, Any]], what: str) -> None:
    for i, item in enumerate(items):
        kind = item.get("type")
        if kind is None and "role" in item:
            continue  # an easy input message ({"role": ..., "content": ...})
        if not isinstance(kind, str):
            raise ValueError(f"{what}[{i}].type: Field required")


class ResponsesRequest(_Open):
    model: str = Field(min_length=1, max_length=256)
    input: str | list[dict[str, Any]] = Field(default_factory=list)
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=512)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    max_output_tokens: Integer | None = Field(default=None, ge=1, le=2**31 - 1)
    max_tool_calls: Integer | None = Field(default=None, ge=1)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    top_p: Number | None = Field(default=None, ge=0, le=1)
    top_logprobs: Integer | None = Field(default=None, ge=0, le=20)
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = Field(default=None, max_length=64)
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    store: StrictBool | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=256)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    background: StrictBool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    conversation: Any = None
    prompt: Any = None
    provider: str | None = None  # modelgate: run one named route of the model (as on chat)

    @field_validator("input")
    @classmethod
    def _items_typed(cls, v: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        if isinstance(v, list):
            _typed_items(v, "input")
        return v

    @field_validator("tools")
    @classmethod
    def _tools_typed(cls, v: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, tool in enumerate(v or []):
            if not isinstance(tool.get("type"), str):
                raise ValueError(f"tools[{i}].type: Field required")
            if tool["type"] == "function" and not isinstance(tool.get("name"), str):
                raise ValueError(f"tools[{i}].name: Field required")
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata_bounds(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None:
            if len(v) > 16:
                raise ValueError("metadata: at most 16 keys are allowed")
            for key, value in v.items():
                if len(key) > 64 or len(value) > 512:
                    raise ValueError("metadata: keys are at most 64 characters, values at most 512")
        return v

    def unsupported(self) -> tuple[str, str] | None:
        """(field, why) for what this gateway cannot do at all, else None."""
        if self.background:
            return "background", (
                "background responses are not supported by this gateway; send the request without "
                "background (stream it for long answers)"
            )
        if self.conversation is not None:
            return "conversation", "conversation objects are not supported; use previous_response_id"
        if self.prompt is not None:
            return "prompt", "stored prompt templates are not supported; send instructions and input"
        if self.stream_options is not None and not self.stream:
            return "stream_options", "only allowed when stream is true"
        return None

    @property
    def stored(self) -> bool:
        """``store`` defaults to true, as on OpenAI."""
        return self.store is not False

    @property
    def items(self) -> list[dict[str, Any]]:
        """``input`` as a list of items (a string is one user message)."""
        if isinstance(self.input, str):
            return [{"type": "message", "role": "user", "content": self.input}]
        return self.input

    @property
    def format(self) -> TextFormat | None:
        return self.text.format if self.text is not None else None


def _forces_a_tool(req: ResponsesRequest) -> bool:
    choice = req.tool_choice
    if choice == "required":
        return True
    if isinstance(choice, dict):
        return choice.get("type") == "function" or (
            choice.get("type") == "allowed_tools" and choice.get("mode") == "required"
        )
    return False


def needs_of(req: ResponsesRequest) -> frozenset[str]:
    """The capabilities a route needs to serve ``req`` (``MeteredRequest.needs``)."""
    needs: set[str] = set()
    if req.stream:
        needs.add("streaming")
    if _forces_a_tool(req) and any(t.get("type") == "function" for t in req.tools or []):
        needs.add("tools")  # offered tools go to a route without tools left out and named
    fmt = req.format
    if fmt is not None and fmt.type != "text":
        needs.add("structured_output")
    for item in req.items:
        content = item.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") == "input_image" for p in content
        ):
            needs.add("vision")
            break
    return frozenset(needs)
