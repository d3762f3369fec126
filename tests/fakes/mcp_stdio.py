"""A minimal MCP server over stdio (JSON-RPC, one message a line) for the agent tests: a ticket
tracker with ``open_ticket`` and twenty other tools, enough for Claude Code to put them behind its
tool search. Run as ``python -m tests.fakes.mcp_stdio`` (or by path); it answers every
``tools/call`` with ``TICKET``."""

from __future__ import annotations

import json
import sys
from typing import Any

TICKET = "ticket 7: the printer is on fire"


def _tools() -> list[dict[str, Any]]:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
    tools = [
        {"name": f"tool_{i}", "description": f"Tracker tool {i}.", "inputSchema": schema} for i in range(20)
    ]
    return [*tools, {"name": "open_ticket", "description": "Open a ticket by its id.", "inputSchema": schema}]


def answer(msg: dict[str, Any]) -> dict[str, Any] | None:
    method, mid = msg.get("method"), msg.get("id")
    if mid is None:
        return None  # a notification
    result: dict[str, Any] = {}
    if method == "initialize":
        result = {
            "protocolVersion": (msg.get("params") or {}).get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "tracker", "version": "1.0"},
        }
    elif method == "tools/list":
        result = {"tools": _tools()}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": TICKET}]}
    return {"jsonrpc": "2.0", "id": mid, "result": result}


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            reply = answer(json.loads(line))
            if reply is not None:
                sys.stdout.write(json.dumps(reply) + "\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
