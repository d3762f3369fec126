"""The stored-responses service on real SQLite and PostgreSQL (migrated to head): chains, item lookups,
input pages, ownership, deletion and the retention purge; and a gateway whose retention is 0."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import orjson
import pytest
from sqlalchemy import event, func, select

from modelgate.accounts.service import get_or_create_account
from modelgate.settings import sqlite_path
from modelgate.store.db import Database
from modelgate.store.holds_owners import new_owner_id
from modelgate.store.pg_writer import PGWriter
from modelgate.store.responses import ResponseRecord, ResponseStore
from modelgate.store.schema_responses import StoredResponse, StoredResponseItem
from modelgate.store.sqlite_writer import SQLiteWriter
from tests.conftest import LiveServer


def record(
    rid: str, account: int, *, prev: str | None = None, thread: str | None = None, n: int = 1
) -> ResponseRecord:
    inputs = [
        (f"in_{rid}_{i}", {"type": "message", "role": "user", "content": f"{rid} q{i}"}) for i in range(n)
    ]
    output = {
        "id": f"msg_{rid}",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": f"{rid} a"}],
    }
    return ResponseRecord(
        id=rid,
        account_id=account,
        key_id=None,
        model="mock/echo",
        provider="mock",
        native=False,
        previous_response_id=prev,
        thread_id=thread or rid,
        body=orjson.dumps({"id": rid, "object": "response", "output": [output]}),
        inputs=inputs,
        outputs=[output],
    )


async def _scenario(url: str, *, via_writer: bool = False) -> None:
    """``via_writer``: saves go through the database's batched writer, as the gateway does (the SQLite
    group-commit writer on a file, the ledger writer's settle lane on PostgreSQL)."""
    db = Database(url)
    writer: SQLiteWriter | PGWriter | None = None
    try:
        await db.upgrade()
        async with db.engine.begin() as conn:
            alice = await get_or_create_account(conn, email="alice@example.com")
            bob = await get_or_create_account(conn, email="bob@example.com")
        if via_writer and db.is_sqlite:
            path = sqlite_path(db.url)
            assert path is not None
            writer = SQLiteWriter(path)
            writer.start()
        elif via_writer:
            writer = PGWriter(db.url.replace("+asyncpg", "", 1), owner=new_owner_id())
            await writer.start()
        store = ResponseStore(db.engine, retention_days=30, writer=writer)
        await store.save(record("r1", alice, n=3))
        await store.save(record("r2", alice, prev="r1", thread="r1"))
        await store.save(record("r3", alice, prev="r2", thread="r1"))
        await store.save(record("fork", alice, prev="r1", thread="r1"))
        chain = await store.chain(account_id=alice, response_id="r3")
        assert chain is not None and chain.thread_id == "r1" and chain.provider == "mock"
        texts = [
            i["content"] if i["type"] == "message" and i["role"] == "user" else i["content"][0]["text"]
            for i in chain.items
        ]
        assert texts == ["r1 q0", "r1 q1", "r1 q2", "r1 a", "r2 q0", "r2 a", "r3 q0", "r3 a"]  # not the fork
        assert await store.chain(account_id=bob, response_id="r3") is None
        found = await store.items(account_id=alice, ids=["msg_r2", "in_r1_1", "nope"])
        assert set(found) == {"msg_r2", "in_r1_1"}
        assert await store.items(account_id=bob, ids=["msg_r2"]) == {}
        page = await store.input_items(account_id=alice, response_id="r1", limit=2, order="asc", after=None)
        assert page is not None and [i["id"] for i in page[0]] == ["in_r1_0", "in_r1_1"] and page[1]
        rest = await store.input_items(
            account_id=alice, response_id="r1", limit=2, order="asc", after="in_r1_1"
        )
        assert rest is not None and [i["id"] for i in rest[0]] == ["in_r1_2"] and not rest[1]
        desc = await store.input_items(account_id=alice, response_id="r1", limit=5, order="desc", after=None)
        assert desc is not None and [i["id"] for i in desc[0]] == ["in_r1_2", "in_r1_1", "in_r1_0"]
        assert (
            await store.input_items(account_id=bob, response_id="r1", limit=5, order="asc", after=None)
            is None
        )
        assert not await store.delete(account_id=bob, response_id="r2")
        assert await store.delete(account_id=alice, response_id="r2")
        assert await store.get(account_id=alice, response_id="r2") is None
        chain = await store.chain(account_id=alice, response_id="r3")  # the link is gone: r3 stands alone
        assert (
            chain is not None and [i.get("id") for i in chain.items if i["type"] == "message"][-1] == "msg_r3"
        )
        # retention: a store whose responses expire at once hides them, and the purge removes them
        gone = ResponseStore(db.engine, retention_days=1e-9, writer=writer)
        await gone.save(record("old", alice))
        await asyncio.sleep(0.01)
        assert await store.get(account_id=alice, response_id="old") is None
        assert await store.chain(account_id=alice, response_id="old") is None
        assert await store.items(account_id=alice, ids=["msg_old"]) == {}
        assert await store.purge_expired() == 1
        async with db.engine.connect() as conn:
            left = (
                await conn.execute(
                    select(func.count())
                    .select_from(StoredResponseItem)
                    .where(StoredResponseItem.response_id == "old")
                )
            ).scalar()
            kept = (await conn.execute(select(func.count()).select_from(StoredResponse))).scalar()
        assert left == 0 and kept == 3
        # a save is all or nothing: a second response with a known id writes none of its items
        with pytest.raises(Exception, match=r"UNIQUE|unique|duplicate"):
            await store.save(record("r1", alice, n=5))
        page = await store.input_items(account_id=alice, response_id="r1", limit=10, order="asc", after=None)
        assert page is not None and [i["id"] for i in page[0]] == ["in_r1_0", "in_r1_1", "in_r1_2"]
    finally:
        if writer is not None:
            await writer.aclose()
        await db.aclose()


def test_store_service(database_url: str) -> None:
    asyncio.run(_scenario(database_url))


def test_store_service_through_the_batched_writer(database_url: str) -> None:
    asyncio.run(_scenario(database_url, via_writer=True))


@pytest.fixture
def unstored(
    make_live_server: Any, openai_upstream: Any, responses_up: Any, gemini_up: Any, anthropic_up: Any
) -> LiveServer:
    from tests.doors.responses.conftest import responses_config

    live: LiveServer = make_live_server(
        responses_config(openai_upstream, responses_up, gemini_up, anthropic_up), responses_retention_days=0
    )
    return live


def test_zero_retention_keeps_nothing(unstored: LiveServer) -> None:
    c = openai.OpenAI(base_url=f"{unstored.url}/v1", api_key=unstored.create_key(), max_retries=0)
    resp = c.responses.create(model="echo", input="hi")
    assert resp.status == "completed"
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(resp.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="echo", input="again", previous_response_id=resp.id)


def test_a_chain_is_read_in_two_statements(database_url: str) -> None:
    """Before the upstream call of every ``previous_response_id`` request: the thread's links, then
    the items (it was three statements, each a round trip on PostgreSQL, in a transaction of two more)."""

    async def run() -> None:
        db = Database(database_url)
        try:
            await db.upgrade()
            async with db.engine.begin() as conn:
                alice = await get_or_create_account(conn, email="alice@example.com")
            store = ResponseStore(db.engine, retention_days=30)
            await store.save(record("c1", alice))
            await store.save(record("c2", alice, prev="c1", thread="c1"))
            await store.save(record("c3", alice, prev="c2", thread="c1"))
            statements: list[str] = []
            event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
            chain = await store.chain(account_id=alice, response_id="c3")
            assert chain is not None and len(chain.items) == 6
            assert len(statements) == 2, statements
        finally:
            await db.aclose()

    asyncio.run(run())
