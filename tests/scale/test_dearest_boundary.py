"""The boundary at the dearest case: Messages requests whose whole prompt is marked for a 1-hour
cache write and reaches the model's top tier, at a balance that covers exactly K of them, fired in
parallel at one SQLite instance and at two PostgreSQL instances.

The upstream reports exactly that dearest usage (the prompt written to the cache for an hour, at
the tier, and the whole output cap), so each success is charged exactly its hold: exactly K succeed,
the rest are refused, and charged == logged == balance delta. A second round reports more than was
held (the overdraft rule): every success is charged its whole cost, the balance goes below zero by
at most the overages of the requests admitted, and the books still balance.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelgate.catalog.prices import PriceSheet
from modelgate.doors.messages.estimate import prompt_bound
from modelgate.doors.messages.wire import MessagesRequest
from modelgate.providers.base import Usage
from tests.billing.helpers import account_state, assert_books_balance, wait_for
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes import Reply
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.threaded import BackgroundLoop
from tests.scale.conftest import LOCAL_OFF

CREDITS_PER_USD = 2_000_000
KEY = "test-anthropic-key"
# Base prices, and a top tier above a 50-token prompt (every request here reaches it).
PRICING = {
    "input_usd_per_mtok": 3,
    "output_usd_per_mtok": 15,
    "cached_input_usd_per_mtok": 0.3,
    "cache_write_5m_usd_per_mtok": 3.75,
    "cache_write_1h_usd_per_mtok": 6,
    "tiers": [
        {
            "above_prompt_tokens": 50,
            "input_usd_per_mtok": 6,
            "output_usd_per_mtok": 22.5,
            "cached_input_usd_per_mtok": 0.6,
            "cache_write_5m_usd_per_mtok": 7.5,
            "cache_write_1h_usd_per_mtok": 12,
        }
    ],
}
MODEL = """
  - id: anthropic/claude-edge
    info: {{name: Claude edge, developer: Anthropic, contextLength: 200000, outputMax: 64000}}
    pricing: {pricing}
    routes:
      - {{provider: anth, model: claude-edge-upstream}}
"""
BODY = {
    "model": "anthropic/claude-edge",
    "max_tokens": 300,
    "system": [
        {"type": "text", "text": "You are terse. " * 20, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ],
    "messages": [{"role": "user", "content": "the same prompt for every request"}],
}
BOUND = prompt_bound(MessagesRequest.model_validate(BODY))
SHEET = PriceSheet.model_validate(PRICING)
HOLD = SHEET.hold(prompt_tokens=BOUND.tokens, output_tokens=300, cache_write="1h")


def _config(base: str, anthropic_url: str) -> str:
    anth = f"  anth:\n    type: anthropic\n    base_url: {anthropic_url}\n    api_key: {KEY}\n"
    anth += "    max_retries: 0\n"
    mock = MOCK_CONFIG.format(base_url=base).replace("providers:\n", "providers:\n" + anth, 1)
    return mock + MODEL.format(pricing=json.dumps(PRICING))


def _reply(prompt: int, output: int) -> Reply:
    usage = {
        "input_tokens": 0,
        "cache_creation_input_tokens": prompt,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": prompt},
        "output_tokens": output,
    }
    body = {
        "id": "msg_edge",
        "type": "message",
        "role": "assistant",
        "model": "claude-edge-upstream",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    return Reply(body=body)


async def _fire(urls: list[str], key: str, n: int) -> list[tuple[int, str | None]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one(i: int) -> tuple[int, str | None]:
            r = await client.post(f"{urls[i % len(urls)]}/v1/messages", json=BODY, headers=headers)
            return r.status_code, None if r.status_code == 200 else (r.json().get("error") or {}).get("type")

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def _round(
    servers: list[LiveServer], fake: AnthropicFake, *, email: str, n: int, k: int, prompt: int, output: int
) -> None:
    charge = SHEET.cost(Usage(prompt_tokens=prompt, completion_tokens=output, cache_write_1h_tokens=prompt))
    fake.clear()
    fake.add(*[_reply(prompt, output) for _ in range(n)])
    initial = k * HOLD + HOLD - 1  # room for K holds, not K + 1
    key = servers[0].create_key(email=email, usd=initial / CREDITS_PER_USD)
    results = asyncio.run(_fire([s.url for s in servers], key, n))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    assert refused and all(r[0] in (402, 403) for r in refused), refused[:3]
    wait_for(lambda: account_state(servers[0], email)["holds"] == 0, timeout=60)
    state = account_state(servers[0], email)
    overage = max(charge - HOLD, 0)
    if overage == 0:
        assert len(ok) == k and charge == HOLD  # the dearest case is exactly the hold
        assert state["balance"] == HOLD - 1
    else:
        assert 1 <= len(ok) <= k
        assert -state["balance"] <= len(ok) * overage  # below zero by the admitted overages, no more
    assert state["charges"] == len(ok) and state["charged"] == len(ok) * charge  # never truncated
    assert_books_balance(
        servers[0], email, key, initial_credits=initial, requests_made=n, overdraft=len(ok) * overage
    )


@pytest.fixture(scope="module")
def fake_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture
def claude(fake_loop: BackgroundLoop) -> Iterator[AnthropicFake]:
    fake = AnthropicFake(api_key=KEY)
    fake_loop.run(fake.start())
    yield fake
    fake_loop.run(fake.stop())


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path}/modelgate.db"


def test_dearest_case_boundary_on_sqlite(
    make_live_server: Any, openai_upstream: Any, claude: AnthropicFake
) -> None:
    assert BOUND.cache_write == "1h" and BOUND.tokens > 50  # the prompt reaches the top tier
    server = make_live_server(_config(openai_upstream.base_url, claude.base_url))
    _round([server], claude, email="dear@example.com", n=60, k=11, prompt=BOUND.tokens, output=300)
    _round([server], claude, email="over@example.com", n=60, k=11, prompt=BOUND.tokens * 3, output=300)


@pytest.mark.postgres
def test_dearest_case_boundary_on_two_postgresql_instances(
    cluster: Any, openai_upstream: Any, claude: AnthropicFake, tmp_path: Path
) -> None:
    # The cluster's catalogue file gains the Anthropic route (both instances read it at start).
    (tmp_path / "modelgate.yaml").write_text(_config(openai_upstream.base_url, claude.base_url) + LOCAL_OFF)
    a, b = cluster(2)
    _round([a, b], claude, email="dear-pg@example.com", n=120, k=17, prompt=BOUND.tokens, output=300)
    _round([a, b], claude, email="over-pg@example.com", n=120, k=17, prompt=BOUND.tokens * 3, output=300)
