"""A burst: 200 requests arriving at once at one gateway (a coding agent fanning out to sub-agents, a
batch job) are all served — queued behind each other, never refused with 503 — on the embedded SQLite
file and on PostgreSQL, whole answers and streams, and the books stay exact.

No assertion depends on speed: every request must end 200 however long the burst takes, and the
books are read once every hold is settled (a generous deadline, never a speed assertion)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.books import read_books
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted

N = 200
# The fake upstream shares this process with the gateway and the 200 clients: on a loaded machine its
# accept queue and first bytes lag, which the test catalogue's tight upstream timeouts (2 s, 3 s) would
# turn into 502/504s that say nothing about the gateway.
PATIENT = MOCK_CONFIG.replace(
    "{{connect: 2, first_byte: 3, total: 10}}", "{{connect: 60, first_byte: 60, total: 120}}"
)
USAGE = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}


async def _burst(url: str, key: str, n: int, *, stream: bool) -> list[tuple[int, str]]:
    """``n`` requests, each on its own connection, all sent before any is answered."""
    body = {"model": "echo", "messages": [{"role": "user", "content": "one of many"}], "stream": stream}
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def one() -> tuple[int, str]:
            async with client.stream(
                "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            ) as r:
                text = (await r.aread()).decode()
            if r.status_code == 200 and stream:
                # a whole stream: its finish, its charge and [DONE]
                frames = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
                assert frames[-1] == "[DONE]", text[-300:]
                last = json.loads(frames[-2])
                assert last["choices"][0]["finish_reason"] == "stop", text[-300:]
                assert last["meta"]["usage"]["credits_used"] > 0, text[-300:]
            return r.status_code, text[:300]

        return list(await asyncio.gather(*(one() for _ in range(n))))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_burst_is_served_not_refused(
    make_live_server: Any, openai_upstream: FakeOpenAI, stream: bool
) -> None:
    assert "connect: 60" in PATIENT
    live_server: LiveServer = make_live_server(PATIENT.format(base_url=openai_upstream.base_url))
    email = f"burst-{str(stream).lower()}@example.com"
    key = live_server.create_key(email=email, usd=100.0)
    openai_upstream.script(*[Scripted(usage=USAGE) for _ in range(N)])
    results = asyncio.run(_burst(live_server.url, key, N, stream=stream))
    statuses = Counter(status for status, _ in results)
    refused = [text for status, text in results if status != 200]
    assert statuses == {200: N}, (statuses, refused[:3])

    async def books_settled() -> Any:
        for _ in range(1200):
            books = await read_books(live_server.settings.database_url, email=email)
            if books.holds == 0 and books.log_rows == N:
                return books
            await asyncio.sleep(0.05)
        raise AssertionError("holds still open 60 s after the burst")

    books = asyncio.run(books_settled())
    books.assert_exact()
    assert len(books.charges) == N
