"""KeyAuthenticator: cached lookups, one query per burst, brief memory of unknown keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event

from modelgate.accounts.keys import KeyAuthenticator
from modelgate.accounts.service import create_key, get_or_create_account
from modelgate.errors import AuthenticationError
from modelgate.store.db import Database


@pytest.fixture
async def setup(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path}/k.db")
    await db.create_schema()
    async with db.engine.begin() as conn:
        account = await get_or_create_account(conn, email="a@example.com")
        key = (await create_key(conn, account_id=account)).key
    queries: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    yield db, key, queries
    await db.aclose()


async def test_a_burst_of_requests_costs_one_query(setup) -> None:
    db, key, queries = setup
    auth = KeyAuthenticator(db.engine, ttl=30)
    idents = await asyncio.gather(*(auth.authenticate(key) for _ in range(50)))
    assert {i.key_id for i in idents} == {idents[0].key_id}
    assert len([q for q in queries if "api_keys" in q]) == 1
    await auth.authenticate(key)
    assert len([q for q in queries if "api_keys" in q]) == 1  # cached


async def test_unknown_keys_are_remembered_briefly(setup) -> None:
    db, _, queries = setup
    auth = KeyAuthenticator(db.engine, ttl=30)
    for _ in range(20):
        with pytest.raises(AuthenticationError):
            await auth.authenticate("f" * 32)
    assert len([q for q in queries if "api_keys" in q]) == 1


async def test_invalidation_forces_a_fresh_lookup(setup) -> None:
    db, key, queries = setup
    auth = KeyAuthenticator(db.engine, ttl=30)
    ident = await auth.authenticate(key)
    auth.invalidate(key_id=ident.key_id)
    await auth.authenticate(key)
    assert len([q for q in queries if "api_keys" in q]) == 2


async def test_a_lookup_begun_before_a_revoke_is_not_joined_after_it(setup) -> None:
    """A request arriving after ``revoke`` returned must not share the answer of a lookup that read
    the key before it was disabled (it would be accepted)."""
    db, key, _ = setup
    auth = KeyAuthenticator(db.engine, ttl=30)
    release, first_read, second_started = asyncio.Event(), asyncio.Event(), asyncio.Event()
    real_load = auth._load
    loads = 0

    async def slow_load(digest: str):  # type: ignore[no-untyped-def]
        nonlocal loads
        loads += 1
        if loads == 1:
            ident = await real_load(digest)  # read before the key is disabled...
            first_read.set()
            await release.wait()  # ...and answered only after the revoke
            return ident
        second_started.set()
        return await real_load(digest)

    auth._load = slow_load  # type: ignore[method-assign]
    early = asyncio.ensure_future(auth.authenticate(key))
    await first_read.wait()
    async with db.engine.begin() as conn:
        from sqlalchemy import update

        from modelgate.store.schema import ApiKey

        await conn.execute(update(ApiKey).values(disabled=True))
    await auth.revoke(key_id=None)  # the key id is unknown here: any revoke bumps the generation
    late = asyncio.ensure_future(auth.authenticate(key))
    # With the bug, ``late`` joined ``early``'s lookup and never starts its own: this wait fails.
    await asyncio.wait_for(second_started.wait(), 30)
    release.set()
    await early  # began before the revoke: may be accepted
    with pytest.raises(AuthenticationError):
        await late
    assert loads == 2
