"""Fixtures for the provider adapter tests: started protocol fakes (one per test) and the Anthropic
and Gemini adapters pointed at them (``anthropic_adapter``, ``gemini_adapter``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import ProviderContext
from modelgate.providers.gemini import GeminiProvider
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.calls import provider_config
from tests.fakes.gemini_server import GeminiFake


@pytest.fixture
async def gemini_fake() -> AsyncIterator[GeminiFake]:
    async with GeminiFake() as fake:
        yield fake


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[AnthropicFake]:
    async with AnthropicFake() as fake:
        yield fake


@pytest.fixture
async def anthropic_adapter(anthropic_fake: AnthropicFake) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(
        "anthropic",
        provider_config("anthropic", anthropic_fake.base_url, api_key="test-anthropic-key"),
        ProviderContext(user_agent="modelgate-test"),
    )
    yield p
    await p.aclose()


@pytest.fixture
async def gemini_adapter(gemini_fake: GeminiFake) -> AsyncIterator[GeminiProvider]:
    p = GeminiProvider(
        "google",
        provider_config("gemini", gemini_fake.base_url, api_key="test-gemini-key"),
        ProviderContext(user_agent="modelgate-test"),
    )
    yield p
    await p.aclose()
