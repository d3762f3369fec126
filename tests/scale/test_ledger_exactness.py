"""The ledger's group commit across instances (``store/pg_writer.py``): exact at the balance and key
limit boundaries with two instances on one account, and a kill -9 under load neither loses nor
doubles anything beyond the documented window; holds of a killed process are released by a
surviving one (PostgreSQL) or a restarted one (SQLite) without waiting for any timeout.

No assertion depends on speed: the scenarios advance on observed events (responses counted, holds
seen in the database), and the only waits are generous deadlines for work to finish."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelgate.doors.estimate import prompt_tokens_upper_bound
from modelgate.wire.chat import ChatRequest
from tests.books import read_books
from tests.conftest import MOCK_CONFIG, LiveServer, _create_schema
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.scale.conftest import LOCAL_OFF, REDIS_URL, with_silent_model

pytestmark = pytest.mark.postgres
CREDITS_PER_USD = 2_000_000
PROMPT = "the same prompt for every request"


def _body(model: str = "mock/echo") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 50}


# The dearest usage a hold covers: the prompt estimate and the whole output cap (the charge is then
# exactly the hold; a larger usage is charged whole under the overdraft rule, docs/pricing.md).
_ESTIMATE = prompt_tokens_upper_bound(ChatRequest.model_validate(_body()))
DEAREST = {"prompt_tokens": _ESTIMATE, "completion_tokens": 50, "total_tokens": _ESTIMATE + 50}


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = 60.0) -> None:
    """Wait for work to finish (a generous deadline, never a speed assertion)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within:.0f}s: {what}")
        await asyncio.sleep(0.05)


def _hold_size(server: LiveServer, upstream: FakeOpenAI) -> int:
    key = server.create_key(email="calibrate@example.com", usd=100.0)
    upstream.script(Scripted(usage=DEAREST))
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        json=_body(),
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return int(r.headers["x-aimlapi-credits-used"])  # the dearest usage: the charge is the whole hold


async def _fire(urls: list[str], key: str, n: int) -> list[tuple[int, str | None]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one(i: int) -> tuple[int, str | None]:
            r = await client.post(
                f"{urls[i % len(urls)]}/v1/chat/completions",
                json=_body(),
                headers={"Authorization": f"Bearer {key}"},
            )
            code = None if r.status_code == 200 else (r.json().get("error") or {}).get("code")
            return r.status_code, code

        return list(await asyncio.gather(*(one(i) for i in range(n))))


@pytest.mark.parametrize("limit", [False, True], ids=["balance", "key-limit"])
def test_two_instances_at_the_boundary_serve_exactly_what_is_covered(
    cluster: Any, openai_upstream: FakeOpenAI, limit: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Room for exactly K holds on one account (or one key limit), 160 parallel requests spread over
    two instances: exactly K succeed, every charge is the hold, the books balance to the credit, and
    the two instances' batches never deadlock (PostgreSQL would break the cycle after a second)."""
    a, b = cluster(2)
    hold = _hold_size(a, openai_upstream)
    n, k = 160, 23
    openai_upstream.script(*[Scripted(usage=DEAREST) for _ in range(n)])
    email = f"edge-{str(limit).lower()}@example.com"
    if limit:
        key = a.create_key(email=email, usd=1000.0, limit_retention="day", limit_credits=k * hold + hold // 2)
        refusal = "key_limit_exceeded"
    else:
        key = a.create_key(email=email, usd=(k * hold + hold - 1) / CREDITS_PER_USD)
        refusal = "insufficient_credits"
    results = asyncio.run(_fire([a.url, b.url], key, n))
    assert sum(1 for status, _ in results if status == 200) == k
    refused = [r for r in results if r[0] != 200]
    assert refused and {r[0] for r in refused} == {403}, refused[:3]
    assert all(code == refusal for _, code in refused), refused[:3]

    async def settled() -> bool:
        return (await read_books(a.settings.database_url, email=email)).holds == 0

    asyncio.run(_until(settled, "every hold settled"))
    books = asyncio.run(read_books(a.settings.database_url, email=email))
    books.assert_exact()
    assert sorted(books.charges.values()) == [hold] * k
    assert books.log_rows == n  # refusals are logged too (with no cost)
    assert not [r.getMessage() for r in caplog.records if "deadlock" in r.getMessage().lower()]


def test_kill9_under_load_loses_and_doubles_nothing(
    cluster: Any,
    spawn: Any,
    silent_upstream: str,
    pg_database: str,
    redis_prefix: str,
    openai_upstream: FakeOpenAI,
    tmp_path: Path,
) -> None:
    """One instance is killed with SIGKILL while it serves a steady load and holds requests open;
    the other keeps serving, releases the dead one's holds (no 15-minute wait), and the books stay
    exact: every charge has its log row, nothing is charged twice, and at most one answered request
    per client connection of the dead instance goes uncharged (its charge was still queued)."""
    (survivor,) = cluster(1, hold_sweep_interval=0.2)
    config = tmp_path / "victim.yaml"
    config.write_text(
        with_silent_model(MOCK_CONFIG.format(base_url=openai_upstream.base_url) + LOCAL_OFF, silent_upstream)
    )
    victim = spawn(database_url=pg_database, config=config, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    email = "crash@example.com"
    key = survivor.create_key(email=email, usd=20.0)
    headers = {"Authorization": f"Bearer {key}"}
    conns, silent = 12, 3

    async def scenario() -> tuple[list[str], list[str]]:
        answered_by_victim: list[str] = []
        answered_by_survivor: list[str] = []
        killed = asyncio.Event()
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            stuck = [
                asyncio.ensure_future(
                    client.post(
                        f"{victim.url}/v1/chat/completions", json=_body("mock/silent"), headers=headers
                    )
                )
                for _ in range(silent)
            ]

            async def held() -> bool:
                return (await read_books(pg_database, email=email)).holds >= silent

            await _until(held, "the silent requests' holds")

            async def load(url: str, out: list[str]) -> None:
                while not killed.is_set():
                    try:
                        r = await client.post(f"{url}/v1/chat/completions", json=_body(), headers=headers)
                    except httpx.TransportError:
                        return  # the victim died under this request
                    assert r.status_code == 200, r.text
                    out.append(r.headers["x-inference-id"])
                    if len(answered_by_victim) >= 150 and not killed.is_set():
                        killed.set()
                        victim.kill9()

            await asyncio.gather(
                *(load(victim.url, answered_by_victim) for _ in range(conns)),
                *(load(survivor.url, answered_by_survivor) for _ in range(2)),
            )
            await asyncio.gather(*stuck, return_exceptions=True)
            # The survivor still serves the account.
            r = await client.post(f"{survivor.url}/v1/chat/completions", json=_body(), headers=headers)
            assert r.status_code == 200
            answered_by_survivor.append(r.headers["x-inference-id"])

        async def released() -> bool:
            return (await read_books(pg_database, email=email)).holds == 0

        await _until(released, "the dead instance's holds released by the survivor")
        return answered_by_victim, answered_by_survivor

    by_victim, by_survivor = asyncio.run(scenario())
    books = asyncio.run(read_books(pg_database, email=email))
    books.assert_exact()
    charged = set(books.charges)
    assert set(by_survivor) <= charged
    uncharged = [i for i in by_victim if i not in charged]
    assert len(uncharged) <= conns, uncharged
    assert len(by_victim) - len(uncharged) > 0


def test_a_restart_releases_the_holds_of_a_killed_process_at_once(
    spawn: Any, silent_upstream: str, openai_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    """SQLite: the holds of a live process survive another process's start; once it is killed, the
    next process to start releases them during its start-up (its lock file is free)."""
    from modelgate.app import build_app
    from modelgate.settings import Settings

    url = f"sqlite:///{tmp_path}/mg.db"
    asyncio.run(_create_schema(url))
    config = tmp_path / "c.yaml"
    config.write_text(
        with_silent_model(MOCK_CONFIG.format(base_url=openai_upstream.base_url) + LOCAL_OFF, silent_upstream)
    )
    victim = spawn(database_url=url, config=config)
    settings = Settings(database_url=url, config=config, bootstrap=False)
    key = LiveServer(url=victim.url, settings=settings, app=None).create_key(email="r@example.com", usd=1.0)

    def silent_request() -> None:
        with contextlib.suppress(httpx.TransportError):  # its server is killed under it
            httpx.post(
                f"{victim.url}/v1/chat/completions",
                json=_body("mock/silent"),
                headers={"Authorization": f"Bearer {key}"},
                timeout=120,
            )

    stuck = [threading.Thread(target=silent_request, daemon=True) for _ in range(2)]
    for t in stuck:
        t.start()

    async def two_holds() -> bool:
        return (await read_books(url, email="r@example.com")).holds == 2

    asyncio.run(_until(two_holds, "the silent requests' holds"))

    async def start_and_stop() -> dict[str, Any]:
        app = build_app(settings)
        async with app.router.lifespan_context(app):
            return await read_books(url, email="r@example.com")

    assert asyncio.run(start_and_stop()).holds == 2  # its owner is alive: left alone
    victim.kill9()
    books = asyncio.run(start_and_stop())  # a restart: released during start-up
    assert books.holds == 0
    assert books.balance == 2_000_000 and not books.charges
