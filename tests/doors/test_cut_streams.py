"""A stream cut after output is charged the best figures known: what the upstream already reported
exactly (Anthropic's ``message_start``: input, cache reads and writes; Gemini's ``usageMetadata``)
and only the output produced since that report estimated (one token per output event) — never the
prompt estimate of the door when the upstream said better, never less than it reported.

Before: such a stream was charged the door's prompt estimate and one token per output event, as if
the upstream had reported nothing (here ~20 input tokens instead of 6,000, 5,000 of them cache
reads)."""

from __future__ import annotations

import asyncio
import copy
import math
from typing import Any

import requests

from tests.books import read_books
from tests.conftest import GEMINI_KEY, LiveServer
from tests.doors.conftest import DOOR_CONFIG
from tests.fakes import load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_sse
from tests.fakes.gemini_server import GeminiFake, gemini_sse
from tests.fakes.openai_server import FakeOpenAI

REPORTED = {"input_tokens": 1000, "cache_read_input_tokens": 5000, "cache_creation_input_tokens": 0}
DELTAS = 3  # text deltas sent before the connection is cut


def _cut_events() -> list[dict[str, Any]]:
    """message_start with exact input and cache figures, then three text deltas, then nothing."""
    events = copy.deepcopy(load("anthropic_stream_text.json"))
    start = events[0]
    start["data"]["message"]["usage"] = {**REPORTED, "output_tokens": 1}
    delta = events[3]
    return [start, events[1], events[2], *[copy.deepcopy(delta) for _ in range(DELTAS)]]


def _credits(prompt: int, output: int, cached: int) -> int:
    """claude-test's prices (tests/doors/conftest.py): 3 USD/Mtok input, 0.3 cache reads, 15 output."""
    micro = (prompt - cached) * 3.0 + cached * 0.3 + output * 15.0
    return math.ceil(round(micro * 2, 6))


# The reported input (1,000 + 5,000 read from the cache) exactly; the output: the one token the
# report counted and the three deltas since, estimated.
EXPECTED = _credits(6000, 1 + DELTAS, cached=5000)


def _charged(server: LiveServer, email: str) -> int:
    async def settled() -> int:
        for _ in range(600):
            books = await read_books(server.settings.database_url, email=email)
            if books.holds == 0 and books.charges:
                books.assert_exact()
                (credits,) = books.charges.values()
                return credits
            await asyncio.sleep(0.05)
        raise AssertionError("the cut stream was never settled")

    result: int = asyncio.run(settled())
    return result


def test_a_cut_passthrough_stream_is_charged_the_reported_input(
    door_server: LiveServer, anthropic_up: AnthropicFake
) -> None:
    email = "cut-native@example.com"
    key = door_server.create_key(email=email)
    anthropic_up.add(anthropic_sse(_cut_events(), reset_after=len(_cut_events())))
    r = requests.post(
        f"{door_server.url}/v1/messages",
        json={
            "model": "claude-test",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert r.status_code == 200
    assert "event: error" in r.text  # the cut is told to the client
    assert _charged(door_server, email) == EXPECTED


def test_a_cut_translated_stream_is_charged_the_reported_input(
    door_server: LiveServer, anthropic_up: AnthropicFake
) -> None:
    email = "cut-chat@example.com"
    key = door_server.create_key(email=email)
    anthropic_up.add(anthropic_sse(_cut_events(), reset_after=len(_cut_events())))
    r = requests.post(
        f"{door_server.url}/v1/chat/completions",
        json={
            "model": "claude-test",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 200
    assert '"error"' in r.text
    assert _charged(door_server, email) == EXPECTED


def test_a_client_gone_and_its_drain_cut_is_charged_the_reported_input(
    door_server: LiveServer, anthropic_up: AnthropicFake
) -> None:
    """The client leaves after the first event; the gateway drains the upstream for its usage, and
    the upstream cuts the stream before it: the reported input and the output since, as above."""
    email = "cut-gone@example.com"
    key = door_server.create_key(email=email)
    events = _cut_events()
    anthropic_up.add(anthropic_sse(events, event_delay=0.05, reset_after=len(events)))
    with requests.post(
        f"{door_server.url}/v1/messages",
        json={
            "model": "claude-test",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=30,
        stream=True,
    ) as r:
        assert r.status_code == 200
        assert next(r.iter_lines())  # the first event arrived; then the client is gone
    assert _charged(door_server, email) == EXPECTED


GEMINI = (
    DOOR_CONFIG
    + """
  - id: google/gemini-test
    aliases: [gemini-test]
    info: {{name: Gemini test, developer: Google, outputMax: 65536}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: gem, model: gemini-2.5-flash}}
"""
).replace(
    "providers:\n",
    f"providers:\n  gem:\n    type: gemini\n    base_url: {{gemini_url}}\n    api_key: {GEMINI_KEY}\n",
    1,
)


def test_a_cut_gemini_stream_is_charged_its_last_usage_metadata(
    make_live_server: Any,
    openai_upstream: FakeOpenAI,
    anthropic_up: AnthropicFake,
    gemini_up: GeminiFake,
) -> None:
    """Gemini reports its counts with every chunk: a stream cut after the third chunk is charged
    that chunk's figures (24 input, 11 output + 1,339 thinking tokens), nothing estimated."""
    server: LiveServer = make_live_server(
        GEMINI.format(
            base_url=openai_upstream.base_url,
            anthropic_url=anthropic_up.base_url,
            gemini_url=gemini_up.base_url,
        )
    )
    email = "cut-gemini@example.com"
    key = server.create_key(email=email)
    events = load("gemini_stream_text.json")[:3]
    gemini_up.add(gemini_sse(events, reset_after=3))
    r = requests.post(
        f"{server.url}/v1/chat/completions",
        json={
            "model": "gemini-test",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 200
    assert '"error"' in r.text
    # 1 and 2 USD per Mtok: 2 and 4 credits a token
    assert _charged(server, email) == 24 * 2 + (11 + 1339) * 4
