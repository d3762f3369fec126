"""The Anthropic Messages API request (``POST /v1/messages``), as its public reference defines it.

Tolerant where Anthropic is: unknown top-level fields and block fields are kept (a pass-through
route forwards the body unchanged, so beta features survive); content blocks are checked by type
when a request is translated for another upstream (``doors/messages/translate.py``). Every role the
current API accepts is accepted, ``system`` inside ``messages`` included (Claude Code sends one
mid-conversation), and so is ``output_config`` (``effort``, ``format``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from modelgate.wire.numbers import Integer, Number


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MessageParam(_Open):
    role: Literal["user", "assistant", "system"]
    content: str | list[dict[str, Any]]

    @field_validator("content")
    @classmethod
    def _blocks_typed(cls, v: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        if isinstance(v, list):
            for i, block in enumerate(v):
                if not isinstance(block.get("type"), str):
                    raise ValueError(f"content[{i}].type: Field required")
        return v


class ThinkingConfig(_Open):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: Integer | None = Field(default=None, ge=1024, le=2**31 - 1)


class OutputConfig(_Open):
    """``effort`` (how hard the model works: low … max) and ``format`` (structured output: ``{"type":
    "json_schema", "schema": {...}}``); other keys from newer clients are kept."""

    effort: str | None = Field(default=None, max_length=64)
    format: dict[str, Any] | None = None

    @field_validator("format")
    @classmethod
    def _format_typed(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and not isinstance(v.get("type"), str):
            raise ValueError("format.type: Field required")
        if v is not None and v["type"] == "json_schema" and not isinstance(v.get("schema"), dict):
            raise ValueError("format.schema: Field required (an object) for json_schema")
        return v


class ToolChoice(_Open):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: StrictBool | None = None


class Metadata(_Open):
    user_id: str | None = Field(default=None, max_length=256)


class MessagesHead(_Open):
    """The top-level fields of a Messages request other than the prompt (``messages``, ``system``,
    ``tools``): what the door validates with pydantic when it reads the prompt itself
    (``doors/messages/body.py``); unknown top-level fields are kept in ``model_extra``."""

    model: str = Field(min_length=1, max_length=256)
    max_tokens: Integer = Field(ge=1, le=2**31 - 1)
    stream: StrictBool = False
    stop_sequences: list[str] | None = None
    temperature: Number | None = Field(default=None, ge=0, le=1)
    top_p: Number | None = Field(default=None, ge=0, le=1)
    top_k: Integer | None = Field(default=None, ge=0)
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None
    metadata: Metadata | None = None

    @field_validator("tool_choice")
    @classmethod
    def _named_tool(cls, v: ToolChoice | None) -> ToolChoice | None:
        if v is not None and v.type == "tool" and not v.name:
            raise ValueError("tool_choice.name: required when type is tool")
        return v


PROMPT_FIELDS = ("messages", "system", "tools")
MAX_MESSAGES = 100_000


class MessagesRequest(MessagesHead):
    """The whole request: the schema of ``/openapi.json``, and the validation that names the field
    of a body the door's own reading cannot vouch for."""

    messages: list[MessageParam] = Field(max_length=MAX_MESSAGES)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None


class CountTokensHead(_Open):
    """The top-level fields of a ``count_tokens`` request other than the prompt."""

    model: str = Field(min_length=1, max_length=256)
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None


class CountTokensRequest(CountTokensHead):
    messages: list[MessageParam] = Field(max_length=MAX_MESSAGES)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
