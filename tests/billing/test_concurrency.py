"""Exactness under concurrency: parallel requests at the boundary of a balance or a key limit.

The fake upstream reports a huge usage, so every successful request is charged exactly its hold
(charges are capped by the hold): with room for exactly K holds, exactly K requests may succeed,
whatever order the requests hold and settle in.
"""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from modelgate.store.schema import KeySpend
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


def _hold_size(server, upstream):
    key = server.create_key(email="calibrate@example.com", usd=100.0)
    upstream.script(Scripted(usage=HUGE))
    r = chat(server, key, "same prompt for every request")
    assert r.status_code == 200
    return int(r.headers["x-aimlapi-credits-used"])


async def _fire(url, key, n):
    body = {"model": "echo", "messages": [{"role": "user", "content": "same prompt for every request"}]}
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
    openai_upstream.script(*[Scripted(usage=HUGE) for _ in range(N)])
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
    openai_upstream.script(*[Scripted(usage=HUGE) for _ in range(N)])
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
