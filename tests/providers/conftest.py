"""Fixtures for the provider adapter tests: started protocol fakes (one per test) and the Anthropic
and Gemini adapters pointed at them (``anthropic_adapter``, ``gemini_adapter``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

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


@pytest.fixture(scope="module")
def vocab() -> Iterator[tuple[Any, Any, int]]:
    """The shipped GGUF's vocabulary alone (no weights): llama.cpp's library, the vocabulary, its size."""
    lib = pytest.importorskip("llama_cpp")
    from modelgate.providers.local.runtime import default_model_path

    params = lib.llama_model_default_params()
    params.vocab_only = True
    model = lib.llama_model_load_from_file(str(default_model_path()).encode(), params)
    assert model
    v = lib.llama_model_get_vocab(model)
    yield lib, v, lib.llama_vocab_n_tokens(v)
    lib.llama_model_free(model)
