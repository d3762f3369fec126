"""A live gateway whose catalogue adds image models (priced per image by size and quality) on the
protocol-level fake of an OpenAI-compatible upstream, for HTTP and the official openai SDK."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI

# USD per image: 0.04 = 80,000 credits, 0.08 = 160,000, 0.12 = 240,000.
IMAGE_MODELS = """
  - id: fake/image
    aliases: [image-fake]
    type: image
    info: {name: Images (fake), developer: Lab}
    pricing:
      per_unit_usd: {"image:1024x1024/standard": 0.04, "image:1024x1024/hd": 0.08, "image:1792x1024/hd": 0.12}
    images: {max_n: 4, max_prompt_chars: 200, edits: true}
    routes:
      - {provider: mock, model: dall-e-3}
  - id: fake/image-chain
    type: image
    info: {name: Images with a fallback (fake), developer: Lab}
    pricing: {per_unit_usd: {"image:1024x1024/standard": 0.04}}
    routes:
      - {provider: mock2, model: first-image-model}
      - {provider: mock, model: second-image-model}
  - id: fake/tts
    type: speech
    info: {name: Speech (fake), developer: Lab}
    pricing: {per_mchar_usd: 15}
    speech: {max_input_chars: 100, voices: [alloy, nova], formats: [mp3, wav]}
    routes:
      - {provider: mock, model: tts-1}
  - id: fake/whisper
    type: transcription
    info: {name: Transcription (fake), developer: Lab}
    pricing: {per_unit_usd: {second: 0.0001}}
    transcription: {max_file_bytes: 400000, max_seconds: 60}
    routes:
      - {provider: mock, model: whisper-1}
"""
PRICES = {"standard": 80_000, "hd": 160_000, "wide": 240_000}


def images_config(openai_upstream: FakeOpenAI) -> str:
    return MOCK_CONFIG.format(base_url=openai_upstream.base_url) + IMAGE_MODELS.lstrip("\n")


@pytest.fixture
def media_server(make_live_server: Any, openai_upstream: FakeOpenAI) -> LiveServer:
    server: LiveServer = make_live_server(images_config(openai_upstream))
    return server
