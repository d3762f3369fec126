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
