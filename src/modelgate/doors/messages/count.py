"""``POST /v1/messages/count_tokens``: never billed, never logged as a model call.

Exact on a route whose adapter passes Messages through (the request is forwarded to the upstream's
own ``count_tokens``); elsewhere a documented estimate: text at 3.5 characters a token (rounded up),
4 tokens of framing per message, 1,600 per image (Anthropic's ceiling for one image), tool
definitions counted as their JSON text. Estimates lean high, so a client that budgets its context
with them stays inside it.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from modelgate.catalog.models import Route
from modelgate.doors.messages.wire import CountTokensRequest
from modelgate.doors.rawjson import replace_top_level_string
from modelgate.gateway.metered import CountRequest
from modelgate.providers.base import Provider, native

DIALECT = "anthropic-messages"
PER_MESSAGE = 4
PER_IMAGE = 1_600
CHARS_PER_TOKEN = 3.5


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_block_chars(b) for b in value if isinstance(b, dict))
    return 0


def _block_chars(block: dict[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return len(str(block.get("text", "")))
    if kind == "thinking":
        return len(str(block.get("thinking", "")))
    if kind == "tool_use":
        return len(orjson.dumps(block.get("input", {}))) + len(str(block.get("name", "")))
    if kind == "tool_result":
        return _chars(block.get("content"))
    if kind == "document":
        src = block.get("source")
        if isinstance(src, dict) and src.get("type") == "text" and isinstance(src.get("data"), str):
            return len(src["data"])
        return PER_IMAGE * 2
    return 0


def estimate_input_tokens(req: CountTokensRequest) -> int:
    chars = _chars(req.system) + sum(_chars(m.content) for m in req.messages)
    chars += sum(len(orjson.dumps(t)) for t in req.tools or [])
    images = sum(
        1
        for m in req.messages
        if isinstance(m.content, list)
        for b in m.content
        if isinstance(b, dict) and b.get("type") == "image"
    )
    return math.ceil(chars / CHARS_PER_TOKEN) + PER_MESSAGE * (len(req.messages) + 1) + PER_IMAGE * images


def count_request(req: CountTokensRequest, raw: bytes, headers: dict[str, str]) -> CountRequest:
    """The metered core's count (``MeteredCore.count``): exact on a route whose adapter passes
    Messages through, the estimate elsewhere."""

    async def exact(provider: Provider, route: Route) -> int | None:
        upstream = native(provider, DIALECT)
        if upstream is None:
            return None
        body = replace_top_level_string(raw, "model", route.model)
        tokens = await upstream.count_tokens(DIALECT, body, headers)
        return None if tokens is None else int(tokens)

    return CountRequest(model=req.model, counter=exact, estimate=estimate_input_tokens(req))
