"""Structured output (``response_format`` json_schema / json_object) on Claude routes.

The answer is asked for as the input of one reserved tool — forced when thinking is off (Anthropic
refuses forced tools with thinking: then the tool is offered and the system prompt asks for it) —
and read back as the message content by ``anthropic_convert`` (whole answers and streams), so
``client.chat.completions.parse``, LangChain's ``with_structured_output`` and the AI SDK's
``generateObject`` work on Claude.
"""

from __future__ import annotations

from typing import Any

from modelgate.errors import InvalidRequestError
from modelgate.wire.chat import ChatRequest, ResponseFormatJSONSchema, ResponseFormatText

OUTPUT_TOOL = "json_response"


def output_tool(req: ChatRequest) -> str | None:
    """The reserved tool that carries a structured answer, when the request asks for one."""
    rf = req.response_format
    return OUTPUT_TOOL if rf is not None and not isinstance(rf, ResponseFormatText) else None


def structured_output(req: ChatRequest, body: dict[str, Any], *, forced: bool) -> None:
    rf = req.response_format
    schema: dict[str, Any] = {"type": "object"}
    description = "Give your final answer as this tool's input: a JSON object."
    if isinstance(rf, ResponseFormatJSONSchema):
        schema = rf.json_schema.schema_ or schema
        if schema.get("type") != "object":  # tool inputs are objects: wrap anything else
            raise InvalidRequestError(
                "response_format.json_schema.schema: must describe a JSON object on this model",
                param="response_format",
            )
        description = rf.json_schema.description or description
    if any(t.function.name == OUTPUT_TOOL for t in req.tools or []):
        raise InvalidRequestError(
            f"tools: the name {OUTPUT_TOOL!r} is reserved with response_format", param="tools"
        )
    body.setdefault("tools", []).append(
        {"name": OUTPUT_TOOL, "description": description, "input_schema": schema}
    )
    if forced and not req.tools:
        body["tool_choice"] = {"type": "tool", "name": OUTPUT_TOOL}
    elif forced and req.tool_choice in (None, "auto"):
        body["tool_choice"] = {"type": "any"}
    else:
        note = f"Always finish by calling the {OUTPUT_TOOL} tool with your final answer."
        body["system"] = f"{body['system']}\n\n{note}" if body.get("system") else note
