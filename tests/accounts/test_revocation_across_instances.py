"""Issue 18: without Redis, a key disabled or deleted through one instance (or worker) was still
served by another one from its cache for up to ``key_cache_ttl``. The hold every request makes now
requires the key live and its account enabled (``store/sqlite_writer.py`` guard in
``store/ledger_sqlite.py``; ``store/pg_batch.py`` and migration 0010 on PostgreSQL), so the very
next request on any instance gets the 401 a fresh lookup gives; requests that take no hold read the
key afresh. Two app instances on one database (a shared SQLite file, or PostgreSQL), no Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import func, select, update

from modelgate.store.db import Database
from modelgate.store.keys import ACCOUNT_DISABLED_MESSAGE, DISABLED_KEY_MESSAGE, INVALID_KEY_MESSAGE
from modelgate.store.schema import Account, Hold
from tests.conftest import MOCK_CONFIG
from tests.fakes.openai_server import FakeOpenAI

CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 20}
MESSAGES = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 20}


def _db(server: Any, work: Any) -> Any:
    async def run() -> Any:
        db = Database(server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                return await work(conn)
        finally:
            await db.aclose()

    return asyncio.run(run())


def test_a_revoked_key_is_refused_by_every_instance_on_its_next_request(
    make_live_server: Any, openai_upstream: FakeOpenAI
) -> None:
    config = MOCK_CONFIG.format(base_url=openai_upstream.base_url)
    # A cache that would serve the revoked key for an hour: only the hold's guard can refuse it.
    a = make_live_server(config, key_cache_ttl=3600.0)
    b = make_live_server(config, key_cache_ttl=3600.0)
    email = "revoke@example.com"
    mgmt = a.create_key(email=email, usd=0.0, management=True)
    user = a.create_key(email=email, usd=5.0)
    other = a.create_key(email=email, usd=0.0)

    with httpx.Client(timeout=30) as c:

        def chat(server: Any, key: str) -> httpx.Response:
            return c.post(
                f"{server.url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"}
            )

        def manage(method: str, path: str, body: Any = None) -> None:
            r = c.request(method, f"{a.url}{path}", json=body, headers={"Authorization": f"Bearer {mgmt}"})
            assert r.status_code == 200, r.text

        assert chat(b, user).status_code == 200  # b has the key cached now
        assert (
            c.get(f"{b.url}/v1/billing/balance", headers={"Authorization": f"Bearer {user}"}).status_code
            == 200
        )

        manage("PATCH", f"/v1/keys/{user[:8]}", {"disabled": True})
        r = chat(b, user)
        assert r.status_code == 401 and r.json()["error"]["message"] == DISABLED_KEY_MESSAGE, r.text
        r = c.post(
            f"{b.url}/v1/messages",
            json=MESSAGES,
            headers={"x-api-key": user, "anthropic-version": "2023-06-01"},
        )
        assert r.status_code == 401 and r.json()["type"] == "error", r.text
        # A request that takes no hold reads the key afresh.
        r = c.get(f"{b.url}/v1/billing/balance", headers={"Authorization": f"Bearer {user}"})
        assert r.status_code == 401, r.text

        manage("PATCH", f"/v1/keys/{user[:8]}", {"disabled": False})
        assert chat(b, user).status_code == 200

        manage("DELETE", f"/v1/keys/{user[:8]}")
        r = chat(b, user)
        assert r.status_code == 401 and r.json()["error"]["message"] == INVALID_KEY_MESSAGE, r.text

        assert chat(b, other).status_code == 200  # cached on b (the account's credits)
        _db(a, lambda conn: conn.execute(update(Account).where(Account.email == email).values(disabled=True)))
        r = chat(b, other)
        assert r.status_code == 401 and r.json()["error"]["message"] == ACCOUNT_DISABLED_MESSAGE, r.text

    # Refusals leave no hold behind (the last answered request's settle may still be on its way).
    async def holds(conn: Any) -> int:
        mine = select(Account.id).where(Account.email == email).scalar_subquery()
        return int((await conn.execute(select(func.count()).where(Hold.account_id == mine))).scalar_one())

    deadline = time.monotonic() + 30
    while (left := _db(a, holds)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == 0
