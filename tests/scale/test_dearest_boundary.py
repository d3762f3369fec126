"""The boundary at the dearest case: Messages requests whose whole prompt is marked for a 1-hour
cache write and reaches the model's top tier, at a balance that covers exactly K of them, fired in
parallel at one SQLite instance and at two PostgreSQL instances.

Each request's system prompt is its own (a prefix the gateway knows cached is held as a read:
tests/billing/test_known_holds.py; here none is). The upstream reports exactly that dearest usage
(the prompt written to the cache for an hour, at the tier, and the whole output cap), so each
success is charged exactly its hold: exactly K succeed, the rest are refused, and charged ==
logged == balance delta. A second round reports more than was held (the overdraft rule): every
success is charged its whole cost, the balance goes below zero by at most the overages of the
requests admitted, and the books still balance. A third round holds output below max_tokens (the
output hold policy, docs/pricing.md): each request's overage is at most its output beyond the
held output at the tier's price, the stated bound.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelgate.catalog.prices import MICRO, PriceSheet
from modelgate.doors.messages.estimate import prompt_bound
from modelgate.doors.messages.wire import MessagesRequest
from modelgate.gateway.holds import DEFAULT_HOLD_OUTPUT_TOKENS
from modelgate.providers.base import Usage
from tests.billing.helpers import account_state, all_logs, assert_books_balance, wait_for
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


def _body(i: int, max_tokens: int = 300) -> dict[str, Any]:
    """Request ``i``: a system prompt of its own (the same size for every request), so that no
    request's prompt is one the gateway saw cached: each is held at the dearest case."""
    cc = {"type": "ephemeral", "ttl": "1h"}
    return {
        "model": "anthropic/claude-edge",
        "max_tokens": max_tokens,
        "system": [{"type": "text", "text": f"{i:06d} " + "You are terse. " * 20, "cache_control": cc}],
        "messages": [{"role": "user", "content": "the same question for every request"}],
    }


BOUND = prompt_bound(MessagesRequest.model_validate(_body(0)))
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


async def _fire(urls: list[str], key: str, n: int, max_tokens: int = 300) -> list[tuple[int, str | None]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one(i: int) -> tuple[int, str | None]:
            r = await client.post(
                f"{urls[i % len(urls)]}/v1/messages", json=_body(i, max_tokens), headers=headers
            )
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


LONG = 8_000  # the output cap of the output-policy round, and what each of its answers produces
WARM = 100  # the output of the answer that precedes it (what the gateway learns)
HELD = max(DEFAULT_HOLD_OUTPUT_TOKENS, 2 * WARM)  # the output then held per request
# The stated bound of a request's overage: its output beyond the held output, at the tier's price.
OUTPUT_BOUND = -(-(LONG - HELD) * SHEET.rates_for(BOUND.tokens).hold_output // MICRO)


def _output_round(servers: list[LiveServer], fake: AnthropicFake, *, email: str, n: int, k: int) -> None:
    """The output hold policy at the boundary: after one short answer per instance, requests with
    max_tokens 8,000 hold 1,024 output tokens and each produces all 8,000: charged whole, every
    overage within the stated bound, the balance below zero by at most the admitted overages."""
    prompt = BOUND.tokens
    warm_charge = SHEET.cost(
        Usage(prompt_tokens=prompt, completion_tokens=WARM, cache_write_1h_tokens=prompt)
    )
    hold = SHEET.hold(prompt_tokens=prompt, output_tokens=HELD, cache_write="1h")
    charge = SHEET.cost(Usage(prompt_tokens=prompt, completion_tokens=LONG, cache_write_1h_tokens=prompt))
    overage = charge - hold
    assert 0 < overage <= OUTPUT_BOUND
    fake.clear()
    fake.add(*[_reply(prompt, WARM) for _ in servers], *[_reply(prompt, LONG) for _ in range(n)])
    initial = len(servers) * warm_charge + k * hold + hold - 1
    key = servers[0].create_key(email=email, usd=initial / CREDITS_PER_USD)
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    for i, server in enumerate(servers):  # each instance learns the account's answers are short
        r = httpx.post(f"{server.url}/v1/messages", json=_body(900_000 + i), headers=headers, timeout=60)
        assert r.status_code == 200, r.text
    wait_for(lambda: account_state(servers[0], email)["charges"] == len(servers), timeout=60)
    results = asyncio.run(_fire([s.url for s in servers], key, n, max_tokens=LONG))
    ok = [r for r in results if r[0] == 200]
    assert 1 <= len(ok) <= k and all(r[0] in (402, 403) for r in results if r[0] != 200)
    wait_for(lambda: account_state(servers[0], email)["holds"] == 0, timeout=60)
    state = account_state(servers[0], email)
    assert state["charged"] == len(servers) * warm_charge + len(ok) * charge  # never truncated
    assert -state["balance"] <= len(ok) * OUTPUT_BOUND  # below zero by the admitted overages only
    overages = [
        row["overage"]["credits"] for row in all_logs(servers[0], key) if row["status"] == "succeeded"
    ]
    assert sorted(overages) == [0] * len(servers) + [overage] * len(ok)
    assert_books_balance(
        servers[0],
        email,
        key,
        initial_credits=initial,
        requests_made=n + len(servers),
        overdraft=len(ok) * overage,
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
    _output_round([server], claude, email="long@example.com", n=60, k=11)


@pytest.mark.postgres
def test_dearest_case_boundary_on_two_postgresql_instances(
    cluster: Any, openai_upstream: Any, claude: AnthropicFake, tmp_path: Path
) -> None:
    # The cluster's catalogue file gains the Anthropic route (both instances read it at start).
    (tmp_path / "modelgate.yaml").write_text(_config(openai_upstream.base_url, claude.base_url) + LOCAL_OFF)
    a, b = cluster(2)
    _round([a, b], claude, email="dear-pg@example.com", n=120, k=17, prompt=BOUND.tokens, output=300)
    _round([a, b], claude, email="over-pg@example.com", n=120, k=17, prompt=BOUND.tokens * 3, output=300)
    _output_round([a, b], claude, email="long-pg@example.com", n=120, k=17)
