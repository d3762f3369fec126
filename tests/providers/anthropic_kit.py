"""Shared constants and helpers of the Anthropic adapter tests (the adapter fixture,
``anthropic_adapter``, is in conftest.py)."""

from __future__ import annotations

from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import Chunk, ProviderCall

SONNET = "anthropic/claude-sonnet-4.5"
HI = [{"role": "user", "content": "Hello, Claude"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["location"],
            },
        },
    },
    {"type": "function", "function": {"name": "get_time"}},
]


async def collect(provider: AnthropicProvider, call: ProviderCall) -> list[Chunk]:
    return [c async for c in provider.stream(call)]


def joined(chunks: list[Chunk], key: str) -> str:
    return "".join(c["delta"].get(key) or "" for ch in chunks for c in ch.choices)


def finishes(chunks: list[Chunk]) -> list[str]:
    return [c["finish_reason"] for ch in chunks for c in ch.choices if c["finish_reason"]]
