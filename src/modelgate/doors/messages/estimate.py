"""Token estimates of a Messages request, from one walk over its blocks (``tally``).

Two numbers with two jobs:

- ``prompt_bound`` sizes the credit hold before the real count is known: text at the calibrated
  bound of ``doors/tokens.py`` (2.5 ASCII characters a token, half a token per extra UTF-8 byte),
  plus the fixed allowances of ``doors/estimate.py`` (base, per message, per image); and what the
  hold must price beyond plain input: the longest lifetime a ``cache_control`` marker asks for
  (top level, system, message blocks or tools), and the server tools (per-use fees, held at their
  ``max_uses`` or the documented default; a prompt that can grow to the context window). A real
  count above the estimate is charged whole (the overdraft rule, docs/pricing.md). With it, the
  prompt's cache prefixes (``gateway/holds.py`` ``CachePrefix``): the walk goes in the order the
  upstream caches a prompt (tools, system, messages) and at each block boundary keeps a digest of
  the prompt so far (content only: a marker moved to a later block leaves the digest alone), its
  token bound and the marker's lifetime, so a prefix the account recently cached is held as a read.
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
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelgate.doors.estimate import BASE, PER_IMAGE, PER_MESSAGE, SERVER_TOOLS, max_uses
from modelgate.doors.messages.body import Prompt
from modelgate.doors.messages.wire import CountTokensRequest, MessagesRequest
from modelgate.gateway.holds import CachePrefix

FRAMING = 4  # tokens per message (and the system prompt) in the count estimate
CHARS_PER_TOKEN = 3.5


@dataclass(slots=True)
class Tally:
    messages: int = 0
    text_bytes: int = 0  # text as UTF-8 bytes (the upper bound)
    text_chars: int = 0  # the same text as characters (the estimate)
    tokens: int = 0  # parts counted in tokens directly: images, PDFs
    cache_write: str | None = None  # the longest lifetime a cache_control marker asks for
    uses: dict[str, int] = field(default_factory=dict)  # server tools' per-use fees to hold
    grows: bool = False  # a server tool can grow the prompt to the context window
    # Prompt-cache prefixes (gateway/holds.py CachePrefix): None when not asked for; else per block
    # boundary the running digest of the prompt, its token bound and the block's marker lifetime.
    points: list[tuple[int, int, str | None]] | None = None
    digest: int = 0
    seen: int = 0  # messages walked so far
    marked: str | None = None  # the marker met since the last boundary

    def mark(self, block: dict[str, Any]) -> str | None:
        cc = block.get("cache_control")
        if isinstance(cc, dict):
            ttl = "1h" if cc.get("ttl") == "1h" else "5m"
            self.cache_write = "1h" if ttl == "1h" or self.cache_write == "1h" else "5m"
            self.marked = "1h" if ttl == "1h" or self.marked == "1h" else "5m"
            return ttl
        return None

    def point(self, part: Any) -> None:
        """A block boundary: the digest of the prompt so far (``part``: what the block adds), a
        breakpoint if a marker was met in the block."""
        if self.points is not None:
            self.digest = hash((self.digest, part))
            extra = self.text_bytes - self.text_chars
            bound = -(-self.text_chars * 2 // 5) + (extra + 1) // 2  # ``bound``, inline
            tokens = BASE + PER_MESSAGE * self.seen + bound + self.tokens
            self.points.append((self.digest, tokens, self.marked))
        self.marked = None

    def tool(self, tool: dict[str, Any]) -> None:
        if "cache_control" in tool:
            self.mark(tool)
        self.point(self.json(tool))
        kind = tool.get("type")
        if kind is None or kind == "custom":  # a client's tool (most of an agent's forty)
            return
        for prefix, fee in SERVER_TOOLS.items():
            if isinstance(kind, str) and kind.startswith(prefix):
                self.grows = True
                if fee:
                    self.uses[fee] = self.uses.get(fee, 0) + max_uses(tool.get("max_uses"))

    @property
    def bound(self) -> int:
        """The calibrated token bound of the text counted (doors/tokens.py, in closed form)."""
        extra = self.text_bytes - self.text_chars
        return -(-self.text_chars * 2 // 5) + (extra + 1) // 2

    def text(self, value: str) -> str:
        n = len(value)
        self.text_chars += n
        # an ASCII str knows it is (a flag, O(1)): its UTF-8 is one byte a character, no encoding
        self.text_bytes += n if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
        return value

    def json(self, value: Any) -> bytes:
        raw = orjson.dumps(value)
        self.text_bytes += len(raw)
        # characters: bytes less the continuation bytes of non-ASCII text
        self.text_chars += len(raw) if raw.isascii() else len(raw.decode("utf-8", "replace"))
        return raw

    def blocks(self, content: Any) -> None:
        """The blocks of a system prompt or a message, each a cache boundary. This runs for every
        block of an agent's history (hundreds): the common blocks (text, a tool result's text) are
        counted and their boundary taken inline, the same arithmetic as ``text`` and ``point``."""
        if isinstance(content, str):
            self.point(self.text(content))
            return
        points = self.points
        for block in content or []:
            if not isinstance(block, dict):
                continue
            if "cache_control" in block:
                self.mark(block)
            kind = block.get("type")
            part: Any = None
            if kind == "text":
                part = block.get("text", "")
                if type(part) is not str:
                    part = str(part)
            elif kind == "tool_result" and type(block.get("content")) is str:
                part = block["content"]
            if part is None:
                part = self.content(block)
            else:
                n = len(part)
                self.text_chars += n
                self.text_bytes += n if part.isascii() else len(part.encode("utf-8", "surrogatepass"))
            if points is not None:
                self.digest = digest = hash((self.digest, part))
                extra = self.text_bytes - self.text_chars
                bound = -(-self.text_chars * 2 // 5) + (extra + 1) // 2
                points.append((digest, BASE + PER_MESSAGE * self.seen + bound + self.tokens, self.marked))
            self.marked = None

    def block(self, block: dict[str, Any]) -> Any:
        """Counts a block; returns what identifies its content for the cache digest."""
        if "cache_control" in block:
            self.mark(block)
        return self.content(block)

    def content(self, block: dict[str, Any]) -> Any:
        """``block`` without its marker."""
        kind = block.get("type")
        if kind == "text":
            return self.text(str(block.get("text", "")))
        if kind == "thinking":
            return self.text(str(block.get("thinking", "")))
        if kind == "tool_use":
            return (self.text(str(block.get("name", ""))), self.json(block.get("input", {})))
        if kind == "tool_result":
            content = block.get("content")
            if isinstance(content, str):
                return self.text(content)
            return tuple(self.block(b) for b in content or [] if isinstance(b, dict))
        src = block.get("source")
        ref = (src.get("data") or src.get("url") or src.get("file_id")) if isinstance(src, dict) else None
        if kind == "image":
            self.tokens += PER_IMAGE
            return (kind, str(ref))
        if kind == "document":
            data = src.get("data") if isinstance(src, dict) else None
            if isinstance(src, dict) and src.get("type") == "text" and isinstance(data, str):
                return self.text(data)
            self.tokens += len(data) // 8 if isinstance(data, str) else PER_IMAGE
            return (kind, str(ref))
        return self.json(block)


def tally(req: Prompt | MessagesRequest | CountTokensRequest, *, prefixes: bool = False) -> Tally:
    """One walk in the upstream's cache order (tools, system, messages); ``prefixes``: with the
    digest of the prompt at each block boundary."""
    p = req if isinstance(req, Prompt) else Prompt.of(req)
    t = Tally(messages=len(p.messages), points=[] if prefixes else None)
    auto = t.mark(p.extra or {})  # automatic caching: a top-level cache_control
    t.marked = None
    for tool in p.tools or []:
        t.tool(tool)
    t.blocks(p.system)
    for msg in p.messages:
        t.seen += 1
        t.digest = hash((t.digest, msg["role"]))
        t.blocks(msg["content"])
    if auto and t.points:  # the breakpoint is the last block
        digest, tokens, ttl = t.points[-1]
        t.points[-1] = (digest, tokens, ttl or auto)
    return t


@dataclass(slots=True)
class PromptBound:
    tokens: int
    cache_write: str | None
    uses: dict[str, int]
    grows: bool
    prefix: CachePrefix | None = None  # where the prompt can be cached (None: nothing marked)


def prompt_bound(req: Prompt | MessagesRequest, *, prefixes: bool = True) -> PromptBound:
    """The hold's bound of the prompt; ``prefixes``: with the cache prefixes (the door skips their
    digests for a body without a ``cache_control`` key: nothing can be written to a cache)."""
    t = tally(req, prefixes=prefixes)
    tokens = BASE + PER_MESSAGE * t.messages + t.bound + t.tokens
    prefix = None
    marked = [i for i, p in enumerate(t.points or ()) if p[2] is not None]
    if marked and t.points:
        prefix = CachePrefix(tuple(t.points), marked[-1])
    return PromptBound(tokens, t.cache_write, t.uses, t.grows, prefix)


def prompt_upper_bound(req: Prompt | MessagesRequest) -> int:
    return prompt_bound(req).tokens


def estimate_input_tokens(req: Prompt | CountTokensRequest) -> int:
    t = tally(req)
    return math.ceil(t.text_chars / CHARS_PER_TOKEN) + FRAMING * (t.messages + 1) + t.tokens
