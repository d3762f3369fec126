"""Token estimates of a Messages request, from one walk over its blocks (``tally``).

Two numbers with two jobs:

- ``prompt_upper_bound`` sizes the credit hold before the real count is known, so it must not fall
  below the real count (a charge never exceeds its hold): UTF-8 bytes bound BPE tokens from above,
  plus the fixed allowances of ``doors/estimate.py`` (base, per message, per image).
- ``estimate_input_tokens`` answers ``count_tokens`` on a route that cannot count exactly; a client
  budgets its context with it, so it is close but leans high: characters at 3.5 a token (rounded up),
  4 tokens of framing per message, the same per-image allowance.

What a block weighs: text (and a text document, a thinking block's text, a tool_use's name and
input) as text; an image ``PER_IMAGE`` tokens; a base64 PDF a token per 8 bytes of its data (a page
costs at most a few thousand tokens and weighs tens of kilobytes); a tool_result what its content
weighs; anything else (server-tool history, search results) its JSON text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from modelgate.doors.estimate import BASE, PER_IMAGE, PER_MESSAGE
from modelgate.doors.messages.wire import CountTokensRequest, MessagesRequest

FRAMING = 4  # tokens per message (and the system prompt) in the count estimate
CHARS_PER_TOKEN = 3.5


@dataclass(slots=True)
class Tally:
    messages: int = 0
    text_bytes: int = 0  # text as UTF-8 bytes (the upper bound)
    text_chars: int = 0  # the same text as characters (the estimate)
    tokens: int = 0  # parts counted in tokens directly: images, PDFs

    def text(self, value: str) -> None:
        self.text_chars += len(value)
        self.text_bytes += len(value.encode("utf-8"))

    def json(self, value: Any) -> None:
        raw = orjson.dumps(value)
        self.text_chars += len(raw)
        self.text_bytes += len(raw)

    def blocks(self, content: Any) -> None:
        if isinstance(content, str):
            self.text(content)
            return
        for block in content or []:
            if isinstance(block, dict):
                self.block(block)

    def block(self, block: dict[str, Any]) -> None:
        kind = block.get("type")
        if kind == "text":
            self.text(str(block.get("text", "")))
        elif kind == "thinking":
            self.text(str(block.get("thinking", "")))
        elif kind == "tool_use":
            self.text(str(block.get("name", "")))
            self.json(block.get("input", {}))
        elif kind == "tool_result":
            self.blocks(block.get("content"))
        elif kind == "image":
            self.tokens += PER_IMAGE
        elif kind == "document":
            src = block.get("source")
            data = src.get("data") if isinstance(src, dict) else None
            if isinstance(src, dict) and src.get("type") == "text" and isinstance(data, str):
                self.text(data)
            else:
                self.tokens += len(data) // 8 if isinstance(data, str) else PER_IMAGE
        else:
            self.json(block)


def tally(req: MessagesRequest | CountTokensRequest) -> Tally:
    t = Tally(messages=len(req.messages))
    t.blocks(req.system)
    for msg in req.messages:
        t.blocks(msg.content)
    for tool in req.tools or []:
        t.json(tool)
    return t


def prompt_upper_bound(req: MessagesRequest) -> int:
    t = tally(req)
    return BASE + PER_MESSAGE * t.messages + t.text_bytes + t.tokens


def estimate_input_tokens(req: CountTokensRequest) -> int:
    t = tally(req)
    return math.ceil(t.text_chars / CHARS_PER_TOKEN) + FRAMING * (t.messages + 1) + t.tokens
