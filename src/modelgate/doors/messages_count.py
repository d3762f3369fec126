"""``POST /v1/messages/count_tokens``: never billed, never logged as a model call.

Exact on a route whose adapter passes Messages through (the request is forwarded to the upstream's
own ``count_tokens``); elsewhere a documented estimate: text at 3.5 characters a token (rounded up),
4 tokens of framing per message, 1,600 per image (Anthropic's ceiling for one image), tool
definitions counted as their JSON text. Estimates lean high, so a client that budgets its context
with them stays inside it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.doors.messages.wire import CountTokensRequest
from modelgate.doors.rawjson import replace_top_level_string
from modelgate.errors import UpstreamError
from modelgate.gateway.admission import check_key, resolve_model
from modelgate.gateway.metered import Caller
from modelgate.providers.base import native

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState

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


async def count_tokens(
    state: AppState, req: CountTokensRequest, caller: Caller, raw: bytes, headers: dict[str, str]
) -> int:
    core = state.core
    check_key(caller.ident, "model:chat")
    model = resolve_model(core.catalog, req.model, "chat")
    for route in core.router.plan(model, None):
        provider = native(core.providers[route.provider], DIALECT)
        counter = getattr(provider, "count_tokens", None)
        if counter is None:
            continue
        try:
            return int(await counter(replace_top_level_string(raw, "model", route.model), headers))
        except UpstreamError as exc:
            if not exc.retryable:
                raise
    return estimate_input_tokens(req)
