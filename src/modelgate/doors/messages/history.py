"""History blocks that only Anthropic's own service produces, as text another model can read.

A conversation that used Anthropic's server tools (web search, web fetch, code execution, MCP)
carries their calls and results in its history: ``server_tool_use``, ``web_search_tool_result``,
``web_fetch_tool_result``, ``*code_execution_tool_result``, ``mcp_tool_use`` / ``mcp_tool_result``,
and ``search_result`` blocks (a client's own retrieved sources, also inside ``tool_result``). No
other upstream has these types, and refusing them would strand the conversation on one provider, so
on translated routes each becomes plain text that keeps what a model needs: which tool ran with
which input, and what came back (titles, addresses, text, output). Encrypted fields stay out: no
model but Anthropic's can read them.
"""

from __future__ import annotations

from typing import Any

import orjson

# Text longer than this from one block is cut (history text is bounded like any other input).
MAX_BLOCK_TEXT = 200_000


def _json(value: Any) -> str:
    return orjson.dumps(value).decode() if value is not None else "{}"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _texts(content: Any) -> str:
    """Text blocks (or a string) as text; other nested blocks through ``block_text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return ""
    out = [t for b in content if isinstance(b, dict) and (t := block_text(b)) is not None]
    return "\n".join(out)


def _search_result(block: dict[str, Any]) -> str:
    head = " — ".join(p for p in (_str(block.get("title")), _str(block.get("source"))) if p)
    return f"[search result: {head}]\n{_texts(block.get('content'))}".rstrip()


def _web_search_results(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, dict):  # web_search_tool_result_error
        return f"[web search failed: {_str(content.get('error_code')) or 'error'}]"
    lines = ["[web search results]"]
    for item in content if isinstance(content, list) else []:
        if isinstance(item, dict):
            title, url, age = _str(item.get("title")), _str(item.get("url")), _str(item.get("page_age"))
            lines.append(f"- {title} ({url})" + (f", {age}" if age else ""))
    return "\n".join(lines)


def _web_fetch_result(block: dict[str, Any]) -> str:
    content = block.get("content")
    if not isinstance(content, dict):
        return "[web fetch result]"
    if content.get("type") != "web_fetch_result":
        return f"[web fetch failed: {_str(content.get('error_code')) or 'error'}]"
    doc = content.get("content")
    text = ""
    if isinstance(doc, dict):
        src = doc.get("source")
        if isinstance(src, dict) and isinstance(src.get("data"), str) and src.get("type") == "text":
            text = src["data"]
        elif isinstance(src, dict) and src.get("type") == "content":
            text = _texts(src.get("content"))
    return f"[web fetch result: {_str(content.get('url'))}]\n{text}".rstrip()


def _execution_result(block: dict[str, Any]) -> str:
    content = block.get("content")
    if not isinstance(content, dict):
        return f"[{block.get('type')}]\n{_texts(content)}".rstrip()
    parts = [f"[{_str(content.get('type')) or 'code execution result'}]"]
    if "return_code" in content:
        parts.append(f"return code: {content.get('return_code')}")
    for key in ("stdout", "stderr", "content", "error_code"):
        value = content.get(key)
        if isinstance(value, str) and value:
            parts.append(f"{key}: {value}")
    return "\n".join(parts)


def block_text(block: dict[str, Any]) -> str | None:
    """The text a block stands for, or None for a type this module does not know."""
    kind = block.get("type")
    text: str | None
    if kind == "text":
        text = _str(block.get("text"))
    elif kind == "search_result":
        text = _search_result(block)
    elif kind in ("server_tool_use", "mcp_tool_use"):
        name = _str(block.get("name")) or "server tool"
        server = _str(block.get("server_name"))
        text = f"[{server + '.' if server else ''}{name} call: {_json(block.get('input'))}]"
    elif kind == "web_search_tool_result":
        text = _web_search_results(block)
    elif kind == "web_fetch_tool_result":
        text = _web_fetch_result(block)
    elif isinstance(kind, str) and kind.endswith("code_execution_tool_result"):
        text = _execution_result(block)
    elif kind == "mcp_tool_result":
        prefix = "[tool error] " if block.get("is_error") else ""
        text = prefix + _texts(block.get("content"))
    elif kind == "image":
        text = "[image]"
    elif kind == "document":
        text = f"[document: {_str(block.get('title')) or 'untitled'}]"
    elif kind == "tool_reference":  # a tool search's result: the tool is offered from here on
        text = f"[tool loaded: {_str(block.get('tool_name'))}]"
    else:
        return None
    return text[:MAX_BLOCK_TEXT]


def tool_result_text(content: Any) -> str:
    """A ``tool_result``'s content (string or blocks) as one text; unknown blocks as their JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content if isinstance(content, list) else [content]:
        if not isinstance(part, dict):
            continue
        text = block_text(part)
        parts.append(text if text is not None else orjson.dumps(part).decode())
    return "\n".join(parts)


def is_history_block(kind: Any) -> bool:
    """Server-side history block types turned into text (``block_text`` knows them)."""
    return kind in (
        "search_result",
        "server_tool_use",
        "mcp_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "mcp_tool_result",
    ) or (isinstance(kind, str) and kind.endswith("code_execution_tool_result"))
