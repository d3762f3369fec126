"""A Messages request as the door reads it: one parse, pydantic only for the small top-level fields.

An agent's request is hundreds of kilobytes (a long system prompt, tools with JSON schemas, a
growing history), and every millisecond spent on it runs on the event loop, delaying every other
request's first byte. So the door does not build pydantic models of the whole document:

- the body is parsed once, by orjson (``httpkit/errors.py`` ``json_object``, with its 64-bit guard);
- the top-level fields other than the prompt are validated by ``MessagesHead`` (a few fields);
- the prompt (``messages``, ``system``, ``tools``) is checked by one walk for exactly what
  ``MessagesRequest`` requires of it (a role, a content that is a string or a list of blocks each
  with a string ``type``; a system prompt that is a string or blocks; tools that are objects), and
  kept as the parsed lists, never copied. The same walk notes whether an image is sent (the route
  must see) and whether any block can hold inline media: only then are the messages walked again by
  ``wire/media.py``'s check (an agent's history of text and tool results has none).

Whatever this reading cannot vouch for (not JSON orjson reads, a field of the wrong type, a role
missing) is validated again by ``MessagesRequest`` the usual way, so every refusal is the 400 it
always was, naming the same field; the reading only ever accepts what ``MessagesRequest`` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from modelgate.doors.messages.wire import (
    MAX_MESSAGES,
    PROMPT_FIELDS,
    CountTokensHead,
    CountTokensRequest,
    MessagesHead,
    MessagesRequest,
)
from modelgate.httpkit.errors import json_object, validate_body
from modelgate.wire.media import check_messages_media

ROLES = frozenset({"user", "assistant", "system"})
H = TypeVar("H", bound=BaseModel)


@dataclass(slots=True)
class Prompt:
    """What the model reads, as parsed: messages (objects with a ``role`` and a ``content``, as
    sent), the system prompt, the tools, and the unknown top-level fields (a top-level
    ``cache_control`` asks for automatic caching)."""

    messages: list[dict[str, Any]]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    extra: dict[str, Any] | None = None

    @classmethod
    def of(cls, req: MessagesRequest | CountTokensRequest) -> Prompt:
        """The prompt of a request pydantic validated."""
        messages = [{"role": m.role, "content": m.content} for m in req.messages]
        return cls(messages, req.system, req.tools, req.model_extra)


@dataclass(slots=True)
class Messages:
    """A ``POST /v1/messages`` request: its validated top-level fields and its prompt."""

    head: MessagesHead
    prompt: Prompt
    vision: bool = False  # an image block in a message: the route must see
    media: bool = True  # a block that can hold inline media (checked: wire/media.py); False: none

    @classmethod
    def of(cls, req: MessagesRequest) -> Messages:
        """From a request pydantic validated (the door's fallback; tests)."""
        prompt = Prompt.of(req)
        return cls(req, prompt, _vision(prompt.messages))


@dataclass(slots=True)
class Count:
    """A ``POST /v1/messages/count_tokens`` request: its validated top-level fields and its prompt."""

    head: CountTokensHead
    prompt: Prompt

    @classmethod
    def of(cls, req: CountTokensRequest) -> Count:
        return cls(req, Prompt.of(req))


def read_messages(raw: bytes) -> Messages:
    """The request in ``raw``, or the 400 that ``validate_body(raw, MessagesRequest)`` raises; inline
    media checked (``wire/media.py``)."""
    data = json_object(raw)
    read = _read(data, MessagesHead) if data is not None else None
    # not vouched for: the usual validation names what is wrong (or accepts it)
    parsed = Messages(*read) if read is not None else Messages.of(validate_body(raw, MessagesRequest))
    if parsed.media:  # on every route, passed through or not
        check_messages_media(parsed.prompt.messages)
    return parsed


def read_count(raw: bytes) -> Count:
    """The ``count_tokens`` request in ``raw``, or the 400 of ``validate_body(raw,
    CountTokensRequest)`` (an agent counts the same ~400 KB history it sends)."""
    data = json_object(raw)
    read = _read(data, CountTokensHead) if data is not None else None
    if read is None:
        return Count.of(validate_body(raw, CountTokensRequest))
    return Count(read[0], read[1])


def _read(data: dict[str, Any], model: type[H]) -> tuple[H, Prompt, bool, bool] | None:
    """The head validated by ``model``, the prompt, whether an image is sent and whether a block can
    hold media; None when this reading cannot vouch for the body."""
    messages, system, tools = data.get("messages"), data.get("system"), data.get("tools")
    if type(messages) is not list or len(messages) > MAX_MESSAGES:
        return None
    if not (system is None or type(system) is str or _objects(system)):
        return None
    if not (tools is None or _objects(tools)):
        return None
    vision = media = False
    for m in messages:
        if type(m) is not dict:
            return None
        role = m.get("role")
        if type(role) is not str or role not in ROLES:
            return None
        content = m.get("content")
        if type(content) is str:
            continue
        if type(content) is not list:
            return None
        for block in content:
            if type(block) is not dict:
                return None
            kind = block.get("type")
            if type(kind) is not str:
                return None
            if kind == "text":
                continue
            if kind == "image":
                vision = media = True
            elif kind == "document" or (kind == "tool_result" and type(block.get("content")) is list):
                media = True
    try:
        head = model.model_validate({k: v for k, v in data.items() if k not in PROMPT_FIELDS})
    except ValidationError:
        return None
    return head, Prompt(messages, system, tools, head.model_extra), vision, media


def _objects(value: Any) -> bool:
    return type(value) is list and all(type(v) is dict for v in value)


def _vision(messages: list[dict[str, Any]]) -> bool:
    for m in messages:
        content = m["content"]
        if isinstance(content, list) and any(b.get("type") == "image" for b in content):
            return True
    return False
