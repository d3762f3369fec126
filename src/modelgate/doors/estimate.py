"""Token estimates, used to size the credit hold before the real count is known.

Text is counted with the calibrated bound of ``doors/tokens.py`` (not UTF-8 bytes: that held
several times the real prompt); fixed allowances cover chat-template overhead per message and each
image. The doors' estimates also say what the hold must price beyond plain input: the longest
cache lifetime a ``cache_control`` marker asks for (the marked prefix may be billed as a cache
write of that lifetime) and the server tools that add per-use fees and can grow the prompt up to
the context window (``doors/messages/estimate.py``, ``doors/responses/translate.py``).
"""

from __future__ import annotations

from typing import Any

from modelgate.doors.tokens import json_tokens, text_tokens
from modelgate.wire.chat import AssistantMessage, ChatRequest, ImagePart

PER_MESSAGE = 16
PER_IMAGE = 2_000
BASE = 64


def prompt_tokens_upper_bound(req: ChatRequest) -> int:
    total = BASE
    for msg in req.messages:
        total += PER_MESSAGE
        content = msg.content
        if isinstance(content, str):
            total += text_tokens(content)
        elif content is not None:
            for part in content:
                if isinstance(part, ImagePart):
                    total += PER_IMAGE
                else:
                    total += json_tokens(part.model_dump(exclude_none=True))
        calls = msg.tool_calls if isinstance(msg, AssistantMessage) else None
        if calls:
            total += sum(json_tokens(c.model_dump()) for c in calls)
    if req.tools:
        total += sum(json_tokens(t.model_dump(exclude_none=True)) for t in req.tools)
    if req.response_format is not None:
        total += json_tokens(req.response_format.model_dump(exclude_none=True, by_alias=True))
    return total


# Server tools (Anthropic ``type`` prefix) -> the per-use fee they incur ("" when none); each adds
# what it fetches to the prompt, which can then grow to the context window.
SERVER_TOOLS = {"web_search_": "web_search", "web_fetch_": "web_fetch", "code_execution_": ""}
# Uses held for a server tool whose request sets no ``max_uses`` (docs/pricing.md).
DEFAULT_SERVER_TOOL_USES = 10


def max_uses(value: Any) -> int:
    """The uses to hold for a server tool's ``max_uses`` (the documented default when unset)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return min(value, 10_000)
    return DEFAULT_SERVER_TOOL_USES
