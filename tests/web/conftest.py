"""Fixtures for the web UI tests: a live server whose catalogue adds a reasoning-capable mock model."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from modelgate.app import build_app
from modelgate.settings import Settings
from tests.conftest import MOCK_CONFIG, LiveServer, _create_schema, _ServerThread
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


@contextmanager
def serve(database_url: str, upstream: FakeOpenAI, tmp_path: Path, extra: str = "") -> Iterator[LiveServer]:
    """A live server on the mock catalogue, the thinker, and ``extra`` catalogue models."""
    config = tmp_path / "modelgate.yaml"
    config.write_text((MOCK_CONFIG + THINKER + extra).format(base_url=upstream.base_url))
    settings = Settings(database_url=database_url, config=config, bootstrap=False, log_flush_interval=0.05)
    app = build_app(settings)
    asyncio.run(_create_schema(database_url))
    thread = _ServerThread(app)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{thread.server.config.port}", settings=settings, app=app)
    finally:
        thread.stop()


@pytest.fixture
def web_server(database_url: str, openai_upstream: FakeOpenAI, tmp_path: Path) -> Iterator[LiveServer]:
    with serve(database_url, openai_upstream, tmp_path) as server:
        yield server


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = Path(__file__).resolve().parents[2]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
WIDE = {"width": 1366, "height": 768}  # the most common laptop width
# The widths and schemes each defect of issue 30 is checked at: desktop, phone, desktop in dark mode.
LOOKS = [(WIDE, "light"), (PHONE, "light"), (WIDE, "dark")]
LOOK_IDS = ["desktop", "phone", "dark"]
# Generous: a busy 2-core machine runs these next to other test sessions.
WAIT_MS = 30_000


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by the playwright package (never a browser download)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


def new_page(browser: Any, *, viewport: dict[str, int] | None = None, **context_kw: Any) -> Any:
    context = browser.new_context(viewport=viewport or DESKTOP, **context_kw)
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    return context.new_page()


def screenshots_dir(tmp_path: Path) -> Path:
    """docs/screenshots when MODELGATE_SCREENSHOTS=1 (to refresh them), else a temp folder."""
    shots = REPO / "docs" / "screenshots" if os.environ.get("MODELGATE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    return shots
