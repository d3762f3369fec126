"""What sizes the credit hold of a Responses request, as ``doors/estimate.py`` does for chat and
``doors/messages/estimate.py`` for Messages.

- ``prompt_upper_bound``: the bound of the prompt tokens (instructions, the conversation with its
  stored history and resolved ``item_reference``s, tools, the output schema).
- ``hosted_tool_bounds``: the per-use fees of hosted tools (web search, file search) to hold for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelgate.doors.estimate import BASE, DEFAULT_SERVER_TOOL_USES, PER_IMAGE, PER_MESSAGE
from modelgate.doors.responses.wire import ResponsesRequest
from modelgate.doors.tokens import json_tokens, text_tokens


def _content_bound(content: Any) -> int:
    if isinstance(content, str):
        return text_tokens(content)
    total = 0
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "input_image":
            total += PER_IMAGE
        elif kind == "input_file":
            data = part.get("file_data")
            # A PDF page costs at most a few thousand tokens and weighs tens of kilobytes.
            total += len(data) // 8 if isinstance(data, str) else PER_IMAGE
        elif isinstance(part.get("text"), str):
            total += text_tokens(part["text"])
        else:
            total += json_tokens(part)
    return total


def prompt_upper_bound(
    req: ResponsesRequest, history: list[dict[str, Any]], refs: Mapping[str, dict[str, Any]]
) -> int:
    """An estimate of the prompt tokens (the calibrated bound of ``doors/tokens.py``; fixed
    allowances for images and per item), as ``doors/estimate.py`` computes it for chat."""
    total = BASE + text_tokens(req.instructions or "")
    for item in [*history, *req.items]:
        if item.get("type") == "item_reference" and isinstance(item.get("id"), str):
            item = refs.get(item["id"], item)
        total += PER_MESSAGE
        if "content" in item and item.get("type", "message") == "message":
            total += _content_bound(item["content"])
        elif item.get("type") == "function_call_output":
            total += _content_bound(item.get("output"))
        else:
            total += json_tokens(item)
    for tool in req.tools or []:
        total += json_tokens(tool)
    fmt = req.format
    if fmt is not None and fmt.schema_ is not None:
        total += json_tokens(fmt.schema_)
    return total


# Hosted tools that incur a per-use fee; their results join the prompt, which can grow to the
# context window. Held at DEFAULT_SERVER_TOOL_USES uses each (the Responses API has no max_uses).
_HOSTED_FEES = {"web_search": "web_search", "web_search_preview": "web_search", "file_search": "file_search"}


def hosted_tool_bounds(req: ResponsesRequest) -> dict[str, Any]:
    """What the hold must cover for the request's hosted tools (``MeteredRequest`` fields)."""
    uses: dict[str, int] = {}
    for tool in req.tools or []:
        kind = tool.get("type") if isinstance(tool, dict) else None
        name = _HOSTED_FEES.get(kind.split("_2", 1)[0]) if isinstance(kind, str) else None
        if name is not None:
            uses[name] = DEFAULT_SERVER_TOOL_USES
    return {"uses": uses, "grows_prompt": True} if uses else {}
