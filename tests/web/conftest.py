"""Fixtures for the web UI tests: a live server whose catalogue adds a reasoning-capable mock model."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelgate.app import build_app
from modelgate.settings import Settings
from tests.conftest import MOCK_CONFIG, LiveServer, _create_schema, _free_port, _ServerThread
from tests.fakes.openai_server import FakeOpenAI

# Same upstream as mock/echo; generous output limit so the docs samples (max_tokens 15000) run as-is.
THINKER = """
  - id: mock/thinker
    info: {{name: Thinker, developer: Lab, description: A mock reasoning model., outputMax: 65536}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    capabilities: [streaming, reasoning, structured_output]
    routes:
      - {{provider: mock, model: thinker-model}}
"""

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture
def web_server(database_url: str, openai_upstream: FakeOpenAI, tmp_path: Path) -> Iterator[LiveServer]:
    config = tmp_path / "modelgate.yaml"
    config.write_text((MOCK_CONFIG + THINKER).format(base_url=openai_upstream.base_url))
    settings = Settings(database_url=database_url, config=config, bootstrap=False, log_flush_interval=0.05)
    app = build_app(settings)
    asyncio.run(_create_schema(database_url))
    thread = _ServerThread(app, _free_port())
    thread.start()
    yield LiveServer(url=f"http://127.0.0.1:{thread.server.config.port}", settings=settings, app=app)
    thread.stop()
