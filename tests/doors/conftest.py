"""Live modelgate servers for the door tests, routed to protocol-level fakes: an Anthropic
Messages upstream (pass-through), the OpenAI-compatible chat fake (translation) and the embedded
local model (translation)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ANTHROPIC_KEY, MOCK_CONFIG, LiveServer
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.openai_server import FakeOpenAI

DOOR_CONFIG = (
    MOCK_CONFIG
    + """
  - id: anthropic/claude-test
    aliases: [claude-test, claude-test-20260101]
    info: {{name: Claude Test, developer: Anthropic, contextLength: 200000, outputMax: 64000}}
    pricing: {{input_usd_per_mtok: 3.0, output_usd_per_mtok: 15.0, cached_input_usd_per_mtok: 0.3}}
    routes:
      - {{provider: anth, model: claude-sonnet-4-5-20250929}}
"""
).replace(
    "providers:\n",
    "providers:\n  anth:\n    type: anthropic\n    base_url: {anthropic_url}\n"
    f"    api_key: {ANTHROPIC_KEY}\n    max_retries: 0\n",
    1,
)


@pytest.fixture
def door_server(
    make_live_server: Any, openai_upstream: FakeOpenAI, anthropic_up: AnthropicFake
) -> LiveServer:
    config = DOOR_CONFIG.format(base_url=openai_upstream.base_url, anthropic_url=anthropic_up.base_url)
    server: LiveServer = make_live_server(config)
    return server
