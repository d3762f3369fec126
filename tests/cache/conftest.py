"""A live gateway for the response-cache tests: the door tests' catalogue (chat on the
OpenAI-compatible fake, Claude on the Anthropic fake) plus an embedding model on the fake."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from modelgate.store.db import Database
from modelgate.store.schema import RequestLog
from modelgate.store.schema_responses import CachedResponse
from tests.conftest import LiveServer
from tests.doors.conftest import DOOR_CONFIG
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.openai_server import FakeOpenAI

CACHE_CONFIG = (
    DOOR_CONFIG
    + """
  - id: fake/embed
    type: embedding
    info: {{name: Embeddings (fake), developer: Lab}}
    pricing: {{input_usd_per_mtok: 0.5}}
    embedding: {{dimensions: 16}}
    routes:
      - {{provider: mock, model: embed-model}}
"""
)


@pytest.fixture
def make_cache_server(make_live_server: Any, openai_upstream: FakeOpenAI, anthropic_up: AnthropicFake) -> Any:
    def make(**settings: Any) -> LiveServer:
        config = CACHE_CONFIG.format(base_url=openai_upstream.base_url, anthropic_url=anthropic_up.base_url)
        server: LiveServer = make_live_server(config, **settings)
        return server

    return make


@pytest.fixture
def cache_server(make_cache_server: Any) -> LiveServer:
    server: LiveServer = make_cache_server()
    return server


def _run(server: LiveServer, query: Any) -> Any:
    async def go() -> Any:
        db = Database(server.settings.database_url)
        try:
            async with db.engine.connect() as conn:
                return (await conn.execute(query)).all()
        finally:
            await db.aclose()

    return asyncio.run(go())


def wait_for_entries(server: LiveServer, count: int) -> None:
    """Until the cache holds ``count`` entries (an answer is kept right after it is sent)."""
    deadline = time.monotonic() + 20
    while _run(server, select(func.count()).select_from(CachedResponse))[0][0] < count:
        assert time.monotonic() < deadline, "the answer was never kept"
        time.sleep(0.02)


def log_rows(server: LiveServer, count: int) -> list[Any]:
    """The request-log rows, oldest first, once there are ``count`` of them."""
    deadline = time.monotonic() + 20
    while True:
        rows = _run(server, select(RequestLog).order_by(RequestLog.created_at, RequestLog.inference_id))
        if len(rows) >= count:
            return list(rows)
        assert time.monotonic() < deadline, f"{len(rows)} log rows, not {count}"
        time.sleep(0.02)
