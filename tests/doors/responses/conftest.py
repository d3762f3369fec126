"""A live modelgate whose catalogue reaches every kind of route the Responses door serves, each on a
protocol-level fake: a Responses upstream (native pass-through), the OpenAI-compatible chat fake,
Gemini and Anthropic (translation to chat) and the embedded local model (translation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import ANTHROPIC_KEY, GEMINI_KEY, MOCK_CONFIG, LiveServer, served
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.responses_server import ResponsesFake
from tests.fakes.threaded import BackgroundLoop

OPENAI_KEY = "test-openai-key"

PROVIDERS = """providers:
  oai:
    type: openai
    base_url: {responses_url}
    api_key: {openai_key}
    max_retries: 0
    options: {{responses: true}}
  gem:
    type: gemini
    base_url: {gemini_url}
    api_key: {gemini_key}
    max_retries: 0
  anth:
    type: anthropic
    base_url: {anthropic_url}
    api_key: {anthropic_key}
    max_retries: 0
"""

MODELS = """
  - id: openai/gpt-fake
    aliases: [gpt-fake]
    info: {{name: GPT fake, developer: OpenAI, contextLength: 128000, outputMax: 16384}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: oai, model: gpt-fake-upstream}}
  - id: google/gemini-fake
    aliases: [gemini-fake]
    info: {{name: Gemini fake, developer: Google, contextLength: 1000000, outputMax: 65536}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: gem, model: gemini-2.5-flash}}
  - id: anthropic/claude-fake
    aliases: [claude-fake]
    info: {{name: Claude fake, developer: Anthropic, contextLength: 200000, outputMax: 64000}}
    pricing: {{input_usd_per_mtok: 3.0, output_usd_per_mtok: 15.0}}
    routes:
      - {{provider: anth, model: claude-sonnet-4-5-20250929}}
"""

CONFIG = MOCK_CONFIG.replace("providers:\n", PROVIDERS, 1) + MODELS


@pytest.fixture
def responses_up(fakes_loop: BackgroundLoop) -> Iterator[ResponsesFake]:
    yield from served(fakes_loop, ResponsesFake(api_key=OPENAI_KEY))


def responses_config(
    openai_upstream: FakeOpenAI,
    responses_up: ResponsesFake,
    gemini_up: GeminiFake,
    anthropic_up: AnthropicFake,
) -> str:
    return CONFIG.format(
        base_url=openai_upstream.base_url,
        responses_url=responses_up.base_url,
        openai_key=OPENAI_KEY,
        gemini_url=gemini_up.base_url,
        gemini_key=GEMINI_KEY,
        anthropic_url=anthropic_up.base_url,
        anthropic_key=ANTHROPIC_KEY,
    )


@pytest.fixture
def server(
    make_live_server: Any,
    openai_upstream: FakeOpenAI,
    responses_up: ResponsesFake,
    gemini_up: GeminiFake,
    anthropic_up: AnthropicFake,
) -> LiveServer:
    live: LiveServer = make_live_server(
        responses_config(openai_upstream, responses_up, gemini_up, anthropic_up)
    )
    return live


@pytest.fixture
def client(server: LiveServer) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key(), max_retries=0, timeout=30)
    yield c
    c.close()
