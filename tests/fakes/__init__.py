"""Protocol-level fakes of upstream LLM APIs, reusable by any test module (no conftest needed).

    from tests.fakes.gemini_server import GeminiFake, gemini_sse, load

    async with GeminiFake(api_key="k") as fake:
        fake.add(Reply(body=load("gemini_text.json")))
        ...  # point a provider at fake.base_url; assert on fake.last.json / fake.last.headers

Recorded example bodies live in ``tests/fakes/data/`` (``load(name)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes.server import SSE, RecordedRequest, Reply, ScriptedServer, SSEReply

DATA_DIR = Path(__file__).parent / "data"


def load(name: str) -> Any:
    """A recorded body from ``tests/fakes/data`` (a fresh copy on every call)."""
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


__all__ = ["DATA_DIR", "SSE", "RecordedRequest", "Reply", "SSEReply", "ScriptedServer", "load"]
