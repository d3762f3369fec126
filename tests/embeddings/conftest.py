"""A live gateway whose catalogue adds embedding models on protocol-level fakes of an OpenAI-compatible
upstream and of the Gemini API (both in background threads), for the official SDKs to call; and the
openai JS SDK, installed from npm into ``tests/embeddings/js/node_modules`` once."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import BackgroundLoop
from tests.npm import install_once

JS_DIR = Path(__file__).parent / "js"

EMBED_MODELS = """
  gemfake:
    type: gemini
    base_url: {gemini_url}
    api_key: test-gemini-key
    max_retries: 0
models:
  - id: fake/openai-embed
    aliases: [openai-embed]
    type: embedding
    info: {{name: OpenAI-compatible embeddings (fake), developer: Lab, releasedAt: "2024-01-25"}}
    pricing: {{input_usd_per_mtok: 0.5}}
    embedding: {{dimensions: 16, min_dimensions: 4, max_inputs: 8, max_input_tokens: 64}}
    routes:
      - {{provider: mock, model: embed-model}}
  - id: fake/fixed-embed
    type: embedding
    info: {{name: Fixed-length embeddings (fake), developer: Lab}}
    pricing: {{input_usd_per_mtok: 0.1}}
    embedding: {{dimensions: 16}}
    routes:
      - {{provider: mock, model: fixed-model}}
  - id: fake/gemini-embed
    aliases: [gemini-embed]
    type: embedding
    info: {{name: Gemini embeddings (fake), developer: Google}}
    pricing: {{input_usd_per_mtok: 0.15}}
    embedding: {{dimensions: 32, min_dimensions: 8, max_inputs: 8, max_input_tokens: 64}}
    routes:
      - {{provider: gemfake, model: gemini-embedding-001, options: {{task_type: SEMANTIC_SIMILARITY}}}}
"""


@pytest.fixture(scope="session")
def gemini_upstream() -> Iterator[GeminiFake]:
    loop = BackgroundLoop()
    fake = GeminiFake()
    fake.embed_dims = 32
    loop.run(fake.start())
    yield fake
    loop.run(fake.stop())
    loop.close()


def embed_config(openai_upstream: FakeOpenAI, gemini_upstream: GeminiFake) -> str:
    base = MOCK_CONFIG.format(base_url=openai_upstream.base_url)
    providers, models = base.split("models:\n", 1)
    extra_providers, extra_models = EMBED_MODELS.format(gemini_url=gemini_upstream.base_url).split(
        "models:\n", 1
    )
    return providers + extra_providers.lstrip("\n") + "models:\n" + models + extra_models


@pytest.fixture
def embed_server(
    make_live_server: Any, openai_upstream: FakeOpenAI, gemini_upstream: GeminiFake
) -> LiveServer:
    gemini_upstream.requests.clear()
    server: LiveServer = make_live_server(embed_config(openai_upstream, gemini_upstream))
    return server


@pytest.fixture(scope="session")
def node_openai() -> Path:
    """``node`` with the openai JS SDK installed (from npm, once per checkout)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the JS SDK tests")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"the JS SDK tests need Node >= 20 (found {version.strip()})")
    done = install_once(npm, JS_DIR, JS_DIR / "node_modules" / "openai" / "package.json", "install")
    if done.returncode != 0:  # no registry reachable: the Python SDK tests cover the same ground
        pytest.skip(f"npm could not install the openai JS SDK: {done.stderr.strip()[-300:]}")
    return Path(node)
