"""Inline media a client sends (images, files, audio): one validator for every door.

Each door walks its own shape (chat content parts, Responses input items, Messages blocks) and
calls these checks with the field's path as the client wrote it, so a bad value is a 400 in that
door's envelope naming that field — before any upstream sees it, whatever the route (translated or
passed through). Only what is certainly wrong is refused: a ``data:`` URL that is not
``data:<type>;base64,<payload>``, a base64 payload that does not decode, a file's data that is a URL
rather than the file. Remote URLs are left to the adapters and upstreams (they differ in what they
fetch).
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from typing import Any

from modelgate.errors import InvalidRequestError
from modelgate.wire.chat import AudioPart, ChatRequest, FilePart, ImagePart, UserMessage


def _bad(field: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(f"{field}: {why}", param=field, code="invalid_value")


def check_base64(payload: str, field: str) -> None:
    """A standard base64 payload (padding optional) that decodes to at least one byte."""
    if not payload:
        raise _bad(field, "the base64 data is empty")
    try:
        raw = payload.encode("ascii")
    except UnicodeEncodeError:
        raise _bad(field, "is not valid base64 data") from None
    raw += b"=" * (-len(raw) % 4)
    try:
        binascii.a2b_base64(raw, strict_mode=True)
    except binascii.Error:
        raise _bad(field, "is not valid base64 data") from None


def check_data_url(url: str, field: str, *, kind: str | None = None) -> str:
    """``data:<type>;base64,<payload>`` with a payload that decodes; returns the media type.
    ``kind`` (``"image"``): the media type must be of that kind."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise _bad(field, "expected a base64 data: URL (data:<media type>;base64,<data>)")
    media = head[5:].split(";", 1)[0].strip().lower()
    if kind is not None and not media.startswith(f"{kind}/"):
        raise _bad(field, f"the data: URL's media type must be {kind}/..., not {media[:100]!r}")
    check_base64(payload, field)
    return media


def check_image_url(url: str, field: str) -> None:
    """An image given by URL: an inline ``data:`` URL must hold a decodable image."""
    if url[:5].lower() == "data:":
        check_data_url(url, field, kind="image")


def check_file_data(data: str, field: str) -> None:
    """A file's inline content: a base64 ``data:`` URL, or the base64 payload alone (as OpenAI's
    APIs allow; adapters that need the media type say so). A URL is not the file's content: 400."""
    if data[:5].lower() == "data:":
        check_data_url(data, field)
        return
    if "://" in data[:64]:
        raise _bad(field, "must hold the file's base64 data, not a URL")
    check_base64(data, field)


# ---- the walk of each dialect's shape ---------------------------------------------------------


def check_chat_media(req: ChatRequest) -> None:
    """Chat Completions: image URLs, files and audio in user messages."""
    for i, msg in enumerate(req.messages):
        if not isinstance(msg, UserMessage) or isinstance(msg.content, str):
            continue
        for j, part in enumerate(msg.content):
            where = f"messages[{i}].content[{j}]"
            if isinstance(part, ImagePart):
                check_image_url(part.image_url.url, f"{where}.image_url.url")
            elif isinstance(part, FilePart):
                data = part.file.get("file_data")
                if isinstance(data, str):
                    check_file_data(data, f"{where}.file.file_data")
            elif isinstance(part, AudioPart):
                check_base64(part.input_audio.data, f"{where}.input_audio.data")


def check_messages_media(messages: Sequence[dict[str, Any]]) -> None:
    """Anthropic Messages (messages as parsed: objects with a ``content``): base64 ``image`` and
    ``document`` sources, also inside tool results."""
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if isinstance(content, list):
            _blocks(content, f"messages[{i}].content")


def _blocks(blocks: list[Any], where: str) -> None:
    for j, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":  # most blocks of an agent's history: nothing to check
            continue
        src = block.get("source")
        if kind in ("image", "document") and isinstance(src, dict) and src.get("type") == "base64":
            data = src.get("data")
            if isinstance(data, str):
                check_base64(data, f"{where}[{j}].source.data")
        elif kind == "tool_result" and isinstance(block.get("content"), list):
            _blocks(block["content"], f"{where}[{j}].content")


def check_responses_media(items: Sequence[Any]) -> None:
    """OpenAI Responses: ``input_image`` and ``input_file`` parts of input messages and of
    function-call outputs."""
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        for key in ("content", "output"):
            parts = item.get(key)
            if not isinstance(parts, list):
                continue
            for j, part in enumerate(parts):
                where = f"input[{n}].{key}[{j}]"
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "input_image" and isinstance(part.get("image_url"), str):
                    check_image_url(part["image_url"], f"{where}.image_url")
                elif part.get("type") == "input_file" and isinstance(part.get("file_data"), str):
                    check_file_data(part["file_data"], f"{where}.file_data")
