"""Shared constants and helpers of the Gemini adapter tests (the adapter fixture,
``gemini_adapter``, is in conftest.py)."""

from __future__ import annotations

from typing import Any

from modelgate.providers.base import Chunk
from modelgate.providers.gemini import GeminiProvider

PRO = "google/gemini-2.5-pro"
FLASH = "google/gemini-2.5-flash"
LITE = "google/gemini-2.5-flash-lite"
HI = [{"role": "user", "content": "Hi! What do you think about mankind?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


async def collect(provider: GeminiProvider, call: Any) -> list[Chunk]:
    return [c async for c in provider.stream(call)]


def text_of(chunks: list[Chunk], key: str = "content", index: int = 0) -> str:
    return "".join(c["delta"].get(key) or "" for ch in chunks for c in ch.choices if c["index"] == index)


def finish_of(chunks: list[Chunk], index: int = 0) -> list[str]:
    return [
        c["finish_reason"] for ch in chunks for c in ch.choices if c["finish_reason"] and c["index"] == index
    ]
