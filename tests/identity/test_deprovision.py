"""Deprovisioning through SCIM while the user's key is in use: the very next request is refused on
both instances of a two-instance set-up, with Redis (the revocation is published and acknowledged
by every instance) and without it (the hold's guard refuses a disabled account on the shared
database); the user's web sessions end; the books keep their history."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
from sqlalchemy import func, select

from modelgate.store.db import Database
from modelgate.store.keys import ACCOUNT_DISABLED_MESSAGE
from modelgate.store.schema import Account, ApiKey, LedgerEntry
from modelgate.store.schema_web import WebSession
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.identity.test_scim_conformance import TOKEN

CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}
USER = "leaver@example.com"
SESSION = "a-browser-session-token-of-the-leaver-0123456789"


def _db(server: LiveServer, work: Any) -> Any:
    async def run() -> Any:
        db = Database(server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                return await work(conn)
        finally:
            await db.aclose()

    return asyncio.run(run())


def _scim(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/scim/v2",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"},
        timeout=30,
    )


def _deprovision_while_in_use(a: LiveServer, b: LiveServer, *, delete: bool) -> None:
    with _scim(a) as scim:
        r = scim.post(
            "/Users",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "leaver",
                "emails": [{"value": USER.upper(), "primary": True}],
                "active": True,
            },
        )
        assert r.status_code == 201, r.text
        user_id = r.json()["id"]
    key = a.create_key(email=USER, usd=5.0)  # the account SCIM provisioned (matched by email)
    other = a.create_key(email="stayer@example.com", usd=5.0)

    async def session(conn: Any) -> None:
        from datetime import UTC, datetime, timedelta

        account = (await conn.execute(select(Account.id).where(Account.email == USER))).scalar_one()
        now = datetime.now(UTC)
        await conn.execute(
            WebSession.__table__.insert().values(
                digest=hashlib.sha256(SESSION.encode()).hexdigest(),
                account_id=account,
                csrf_token="c",
                created_at=now,
                expires_at=now + timedelta(days=1),
            )
        )

    _db(a, session)
    with httpx.Client(timeout=30) as c:

        def chat(server: LiveServer, k: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {k}"}
            return c.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=headers)

        def page(server: LiveServer) -> httpx.Response:  # signed in with the session's cookie
            return c.get(f"{server.url}/app/keys", headers={"Cookie": f"mg_session={SESSION}"})

        for server in (a, b):  # in use, and cached on both instances; signed in on both
            assert chat(server, key).status_code == 200
            assert page(server).status_code == 200
        with _scim(a) as scim:
            if delete:
                assert scim.delete(f"/Users/{user_id}").status_code == 204
                assert scim.get(f"/Users/{user_id}").status_code == 404
            else:
                r = scim.patch(
                    f"/Users/{user_id}",
                    json={
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "value": {"active": False}}],
                    },
                )
                assert r.status_code in (200, 204), r.text  # 204: no attributes were asked for
                assert scim.get(f"/Users/{user_id}").json()["active"] is False
        for server in (b, a):
            r = page(server)
            assert r.status_code == 303 and r.headers["location"].startswith("/app/login"), r.text
            r = chat(server, key)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["message"] == ACCOUNT_DISABLED_MESSAGE
            assert chat(server, other).status_code == 200  # nobody else is touched

    async def after(conn: Any) -> tuple[Any, ...]:
        query = select(Account.id, Account.disabled).where(Account.email == USER)
        account = (await conn.execute(query)).one()
        keys_live = (
            await conn.execute(
                select(func.count()).where(ApiKey.account_id == account.id, ApiKey.disabled.is_(False))
            )
        ).scalar_one()
        sessions = (
            await conn.execute(select(func.count()).where(WebSession.account_id == account.id))
        ).scalar_one()
        charges = (
            await conn.execute(
                select(func.count()).where(LedgerEntry.account_id == account.id, LedgerEntry.kind == "charge")
            )
        ).scalar_one()
        return account.disabled, keys_live, sessions, charges

    disabled, keys_live, sessions, charges = _db(a, after)
    assert disabled and keys_live == 0 and sessions == 0
    assert charges >= 1  # the books keep the requests it made


def test_deprovisioned_on_both_instances_with_redis(cluster: Any) -> None:
    # A key cache that would serve the key for an hour: only the revocation can refuse it.
    a, b = cluster(2, scim_token=TOKEN, key_cache_ttl=3600.0)
    _deprovision_while_in_use(a, b, delete=False)


def test_deleted_on_both_instances_without_redis(make_live_server: Any, openai_upstream: FakeOpenAI) -> None:
    config = MOCK_CONFIG.format(base_url=openai_upstream.base_url)
    a = make_live_server(config, scim_token=TOKEN, key_cache_ttl=3600.0)
    b = make_live_server(config, scim_token=TOKEN, key_cache_ttl=3600.0)
    _deprovision_while_in_use(a, b, delete=True)
