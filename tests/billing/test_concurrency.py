"""Exactness under concurrency: parallel requests at the boundary of a balance or a key limit.

The fake upstream reports the dearest usage the hold covers (the prompt estimate and the whole
output cap), so every successful request is charged exactly its hold: with room for exactly K
holds, exactly K requests may succeed, whatever order the requests hold and settle in. When the
upstream reports more than the hold (the overdraft rule, docs/pricing.md), the whole real cost is
charged and the balance goes below zero by those requests' overages, never more.
"""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from modelgate.doors.estimate import prompt_tokens_upper_bound
from modelgate.store.schema import KeySpend
from modelgate.wire.chat import ChatRequest
from tests.billing.helpers import (
    CREDITS_PER_USD,
    account_state,
    assert_books_balance,
    chat,
    db_read,
    wait_for,
)
from tests.fakes.openai_server import Scripted

N, K = 220, 37
HUGE = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "total_tokens": 2_000_000}
PROMPT = "same prompt for every request"
# What the hold covers: the prompt estimate and the default output cap (512), at mock/echo's prices.
ESTIMATE = prompt_tokens_upper_bound(
    ChatRequest.model_validate({"model": "echo", "messages": [{"role": "user", "content": PROMPT}]})
)
DEAREST = {"prompt_tokens": ESTIMATE, "completion_tokens": 512, "total_tokens": ESTIMATE + 512}


def _hold_size(server, upstream):
    key = server.create_key(email="calibrate@example.com", usd=100.0)
    upstream.script(Scripted(usage=DEAREST))
    r = chat(server, key, PROMPT)
    assert r.status_code == 200
    hold = int(r.headers["x-aimlapi-credits-used"])
    assert hold == ESTIMATE * 2 + 512 * 4  # 1 and 2 USD per Mtok: 2 and 4 credits a token
    return hold


async def _fire(url, key, n):
    body = {"model": "echo", "messages": [{"role": "user", "content": PROMPT}]}
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one():
            r = await client.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            return r.status_code, (r.json().get("error") or {}).get("code") if r.status_code != 200 else None

        return await asyncio.gather(*(one() for _ in range(n)))


def test_parallel_requests_never_overspend_the_balance(live_server, openai_upstream):
    hold = _hold_size(live_server, openai_upstream)
    openai_upstream.script(*[Scripted(usage=DEAREST) for _ in range(N)])
    initial = K * hold + hold - 1  # room for K holds, not K + 1
    key = live_server.create_key(email="edge@example.com", usd=initial / CREDITS_PER_USD)
    results = asyncio.run(_fire(live_server.url, key, N))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    assert len(ok) == K
    assert refused and all(r == (403, "insufficient_credits") for r in refused)
    # Charges are recorded right after each response (documented): wait until none is open.
    wait_for(lambda: account_state(live_server, "edge@example.com")["holds"] == 0)
    state = account_state(live_server, "edge@example.com")
    assert state["balance"] == hold - 1 and state["charged"] == K * hold and state["charges"] == K
    assert_books_balance(
        live_server, "edge@example.com", key, initial_credits=initial, requests_made=K + len(refused)
    )


def test_parallel_requests_never_overspend_a_key_limit(live_server, openai_upstream):
    hold = _hold_size(live_server, openai_upstream)
    openai_upstream.script(*[Scripted(usage=DEAREST) for _ in range(N)])
    limit = K * hold + hold // 2
    key = live_server.create_key(
        email="capped@example.com", usd=1000.0, limit_retention="day", limit_credits=limit
    )
    results = asyncio.run(_fire(live_server.url, key, N))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    assert len(ok) == K
    assert refused and all(r == (403, "key_limit_exceeded") for r in refused)

    async def spend(conn):
        return (await conn.execute(select(KeySpend.spent_credits, KeySpend.held_credits))).all()

    wait_for(lambda: [tuple(r) for r in db_read(live_server, spend)] == [(K * hold, 0)])
    rows = db_read(live_server, spend)
    assert [tuple(r) for r in rows] == [(K * hold, 0)]
    assert_books_balance(
        live_server, "capped@example.com", key, initial_credits=1000 * CREDITS_PER_USD, requests_made=N
    )


def test_overage_is_charged_whole_and_bounded_by_the_requests_that_made_it(live_server, openai_upstream):
    """Upstreams report far more than was held: each success is charged its whole real cost; the
    balance goes below zero only by the overages of requests admitted while it covered their hold."""
    hold = _hold_size(live_server, openai_upstream)
    openai_upstream.script(*[Scripted(usage=HUGE) for _ in range(N)])
    initial = K * hold + hold - 1
    key = live_server.create_key(email="over@example.com", usd=initial / CREDITS_PER_USD)
    results = asyncio.run(_fire(live_server.url, key, N))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    assert 1 <= len(ok) <= K
    assert all(r == (403, "insufficient_credits") for r in refused)
    wait_for(lambda: account_state(live_server, "over@example.com")["holds"] == 0)
    state = account_state(live_server, "over@example.com")
    cost = 1_000_000 * 2 + 1_000_000 * 4
    overage = cost - hold
    assert state["charges"] == len(ok) and state["charged"] == len(ok) * cost  # never truncated
    assert state["balance"] == initial - len(ok) * cost
    # the deficit is the admitted requests' overages, no more: every hold fitted in the balance
    assert -state["balance"] <= len(ok) * overage
    assert_books_balance(
        live_server,
        "over@example.com",
        key,
        initial_credits=initial,
        requests_made=N,
        overdraft=len(ok) * overage,
    )
