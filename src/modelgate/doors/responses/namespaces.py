"""Namespaced tools (``{"type": "namespace", "name": "multi_agent_v1", "tools": [...]}``, sent by
Codex CLI) on routes that speak chat, which has no namespaces.

Each function inside a namespace becomes a chat function named ``<namespace>__<name>``; a call of it
comes back as a ``function_call`` item with ``name`` and ``namespace`` apart, as the Responses API
returns it, and a ``function_call`` item with a ``namespace`` in the input is joined the same way.
Tools inside a namespace that chat cannot call (custom tools) are left out and named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SEP = "__"
MAX_CHAT_NAME = 64  # chat's function-name limit


def joined(namespace: str, name: str) -> str:
    return f"{namespace}{SEP}{name}"


def names(tools: list[dict[str, Any]] | None) -> dict[str, tuple[str, str]]:
    """Joined chat name -> (namespace, name), for every function inside a namespace."""
    out: dict[str, tuple[str, str]] = {}
    for tool in tools or []:
        if tool.get("type") != "namespace" or not isinstance(tool.get("name"), str):
            continue
        for inner in tool.get("tools") or []:
            if not isinstance(inner, dict) or inner.get("type") != "function":
                continue
            if isinstance(inner.get("name"), str):
                out[joined(tool["name"], inner["name"])] = (tool["name"], inner["name"])
    return out


def flatten(tool: dict[str, Any], where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """A namespace tool as chat function tools, and the names of what was left out."""
    space = tool.get("name")
    kept: list[dict[str, Any]] = []
    dropped: list[str] = []
    if not isinstance(space, str) or not space:
        return kept, [f"{where}.namespace"]
    for inner in tool.get("tools") or []:
        if not isinstance(inner, dict):
            continue
        name = inner.get("name")
        if inner.get("type") != "function" or not isinstance(name, str):
            dropped.append(f"{space}.{inner.get('type')}:{name}")
            continue
        full = joined(space, name)
        if len(full) > MAX_CHAT_NAME:
            dropped.append(f"{space}.{name}")
            continue
        fn: dict[str, Any] = {"name": full}
        for key in ("description", "parameters", "strict"):
            if inner.get(key) is not None:
                fn[key] = inner[key]
        kept.append({"type": "function", "function": fn})
    return kept, dropped


def split(item: dict[str, Any], known: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """A ``function_call`` output item whose chat name is a joined one, with name and namespace apart."""
    pair = known.get(str(item.get("name")))
    if item.get("type") == "function_call" and pair is not None:
        item["namespace"], item["name"] = pair
    return item
