"""Stored responses written through the batched writers (``store/responses.py``): on PostgreSQL in the
ledger writer's settle lane, in the statement of the settles and log rows queued with them
(``store/pg_batch.py``). The contract kept: a stored response is committed before its answer (or its
stream's last event) is sent, so the next request finds it on any instance; two at once are both
kept; a refused response costs nobody their charge; a batch re-applied after a lost answer stores
nothing twice."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import openai
import pytest
from sqlalchemy import func, select

import modelgate.store.pg_lane as pg_lane_module
from modelgate.errors import ConflictError, DatabaseUnavailableError
from modelgate.store import pg_batch
from modelgate.store.responses import ResponseStore, pg_rows
from modelgate.store.schema import Hold, LedgerEntry, RequestLog
from modelgate.store.schema_responses import StoredResponse, StoredResponseItem
from tests.billing.test_pg_ledger import Env, _log_row
from tests.billing.test_pg_ledger import env as env  # the fixture
from tests.conftest import LiveServer
from tests.doors.responses.conftest import responses_config
from tests.doors.responses.test_store import record

# ---- through the gateway, on both databases ------------------------------------------------------


@pytest.fixture
def two(
    make_live_server: Any, openai_upstream: Any, responses_up: Any, gemini_up: Any, anthropic_up: Any
) -> tuple[LiveServer, LiveServer]:
    """Two instances on one database."""
    config = responses_config(openai_upstream, responses_up, gemini_up, anthropic_up)
    return make_live_server(config), make_live_server(config)


def _client(server: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=30)


def _create(c: openai.OpenAI, model: str, stream: bool, **kw: Any) -> str:
    if not stream:
        return c.responses.create(model=model, input="hi", **kw).id
    with c.responses.create(model=model, input="hi", stream=True, **kw) as events:
        for event in events:  # the next request goes as soon as the last event is read
            if event.type == "response.completed":
                return event.response.id
    raise AssertionError("no response.completed event")


@pytest.mark.parametrize("model", ["echo", "gpt-fake"], ids=["translated", "pass-through"])
def test_a_stored_response_is_found_at_once_on_another_instance(
    two: tuple[LiveServer, LiveServer], model: str
) -> None:
    a, b = two
    key = a.create_key()
    ca, cb = _client(a, key), _client(b, key)
    for stream in (False, True):
        first = _create(ca, model, stream)
        assert cb.responses.retrieve(first).id == first  # the very next request, another instance
        follow = _create(cb, model, stream, previous_response_id=first)
        assert ca.responses.retrieve(follow).previous_response_id == first


def test_concurrent_stored_requests_are_all_kept(two: tuple[LiveServer, LiveServer]) -> None:
    """Answers that finish together share the writer's batches: every one is stored with its own
    items (on PostgreSQL several responses, settles and log rows in one statement)."""
    a, b = two
    key = a.create_key()
    clients = [_client(a, key), _client(b, key)]

    def one(n: int) -> tuple[str, str]:
        text = f"question {n}"
        content = [{"type": "input_text", "text": text}]
        resp = clients[n % 2].responses.create(model="echo", input=[{"role": "user", "content": content}])
        return resp.id, text

    with ThreadPoolExecutor(12) as pool:
        made = list(pool.map(one, range(24)))
    assert len({rid for rid, _ in made}) == 24
    for n, (rid, text) in enumerate(made):
        items = clients[(n + 1) % 2].responses.input_items.list(rid)
        assert [i.content[0].text for i in items.data] == [text]  # type: ignore[union-attr]


# ---- PostgreSQL: the answer waits for the commit ---------------------------------------------------


@pytest.fixture
def pg_two(
    make_live_server: Any,
    openai_upstream: Any,
    responses_up: Any,
    gemini_up: Any,
    anthropic_up: Any,
    database_url: str,
) -> tuple[LiveServer, LiveServer]:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL: a table lock holds the write back while reads go on")
    config = responses_config(openai_upstream, responses_up, gemini_up, anthropic_up)
    return make_live_server(config), make_live_server(config)


@pytest.fixture
def responses_locked(database_url: str) -> Iterator[Any]:
    """``lock(seconds)``: from now, new rows of ``responses`` wait ``seconds`` (another transaction
    holds the table in SHARE mode; reads are not blocked)."""
    threads: list[threading.Thread] = []

    def lock(seconds: float) -> None:
        taken = threading.Event()

        async def hold() -> None:
            conn = await asyncpg.connect(database_url)
            try:
                async with conn.transaction():
                    await conn.execute("LOCK TABLE responses IN SHARE MODE")
                    taken.set()
                    await asyncio.sleep(seconds)
            finally:
                await conn.close()

        thread = threading.Thread(target=asyncio.run, args=(hold(),))
        thread.start()
        threads.append(thread)
        assert taken.wait(10)

    yield lock
    for thread in threads:
        thread.join(30)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_answer_waits_for_its_response_to_commit(
    pg_two: tuple[LiveServer, LiveServer], responses_locked: Any, stream: bool
) -> None:
    """While the write is held back, so is the answer: a gateway that answered first would leave the
    next request (here on another instance) a 404."""
    a, b = pg_two
    key = a.create_key()
    ca, cb = _client(a, key), _client(b, key)
    _create(ca, "echo", stream)  # warm: caches, pools, prepared statements
    responses_locked(1.0)
    t0 = time.monotonic()
    rid = _create(ca, "echo", stream)
    waited = time.monotonic() - t0
    assert cb.responses.retrieve(rid).id == rid
    assert waited >= 0.8


# ---- PostgreSQL: the settle lane's statements ------------------------------------------------------


def _op(e: Env, rid: str, n: int = 2) -> pg_batch.StoreOp:
    now = datetime.now(UTC)
    response, items = pg_rows(record(rid, e.account_id, n=n), now, now + timedelta(days=30))
    return pg_batch.StoreOp(response, items, asyncio.get_running_loop().create_future())


async def _rows(e: Env, rid: str) -> tuple[int, int]:
    async with e.db.engine.connect() as conn:
        responses = (
            await conn.execute(
                select(func.count()).select_from(StoredResponse).where(StoredResponse.id == rid)
            )
        ).scalar_one()
        items = (
            await conn.execute(
                select(func.count())
                .select_from(StoredResponseItem)
                .where(StoredResponseItem.response_id == rid)
            )
        ).scalar_one()
    return int(responses), int(items)


def _tag() -> str:
    return secrets.token_hex(4)


@pytest.mark.postgres
@pytest.mark.parametrize("shape", ["settle", "settles", "logs", "alone"])
async def test_every_batch_shape_writes_its_responses_once(env: Any, shape: str) -> None:
    """The one-settle statement, the apply function, log rows alone and responses alone: each writes
    the batch's responses with their items, and an id already present writes nothing."""
    e = await env(1000)
    ids = [f"{_tag()}-{i}" for i in range(2)]
    settles: list[pg_batch.SettleOp] = []
    for inference_id in ids[: {"settle": 1, "settles": 2}.get(shape, 0)]:
        assert (
            await e.writer.hold(
                inference_id=inference_id,
                account_id=e.account_id,
                key_id=e.key_id,
                period=None,
                credits=100,
                limit=None,
            )
            == pg_batch.HOLD_OK
        )
        settles.append(pg_batch.SettleOp(inference_id, e.account_id, False, 30, "m", None))
    logs = [_log_row(i, e.account_id) for i in ids] if shape != "alone" else []
    stored = [_op(e, f"resp_{i}") for i in ids]
    conn = await e.writer.connect()
    try:
        settled, _, written = await pg_batch.execute(
            conn, owner=e.writer.owner, holds=[], settles=settles, logs=logs, retry=False, stored=stored
        )
        assert sorted(written) == sorted(f"resp_{i}" for i in ids)
        assert list(settled) == [30] * len(settles)
        again = [_op(e, f"resp_{i}", n=5) for i in ids]
        _, _, written = await pg_batch.execute(
            conn, owner=e.writer.owner, holds=[], settles=[], logs=[], retry=False, stored=again
        )
        assert list(written) == []
    finally:
        await conn.close()
    for i in ids:
        assert await _rows(e, f"resp_{i}") == (1, 3)  # two inputs and the output, not five
    assert await e.balance() == 1000 - 30 * len(settles)
    assert await e.count(RequestLog.__table__, account_id=e.account_id) == len(logs)


@pytest.mark.postgres
async def test_a_save_rides_with_its_settle_and_a_duplicate_is_refused(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = await env(1000)
    store = ResponseStore(e.db.engine, retention_days=30, writer=e.writer)
    ticket = await e.ledger.hold(ident=e.ident(), inference_id=_tag(), credits=100)
    calls: list[dict[str, Any]] = []
    real = pg_lane_module.execute

    async def seen(conn: Any, **kw: Any) -> Any:
        calls.append(kw)
        return await real(conn, **kw)

    monkeypatch.setattr(pg_lane_module, "execute", seen)
    settled = e.ledger.settle(ticket, credits=40, description="m")
    await store.queue(record(f"resp_{ticket.inference_id}", e.account_id))
    assert await settled == 40
    with pytest.raises(ConflictError, match="duplicate"):
        await store.save(record(f"resp_{ticket.inference_id}", e.account_id, n=4))
    assert len(calls[0]["settles"]) == 1 and len(calls[0]["stored"]) == 1  # one statement for both
    assert await _rows(e, f"resp_{ticket.inference_id}") == (1, 2)


@pytest.mark.postgres
async def test_a_response_lost_with_the_answer_is_stored_once(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement commits, then the connection dies before its answer: the batch is applied again
    in retry mode, the response is not written twice, and its save succeeds."""
    e = await env(1000)
    store = ResponseStore(e.db.engine, retention_days=30, writer=e.writer)
    real = pg_batch.execute
    lost = {"n": 0}

    async def commit_then_lose_the_answer(conn: Any, **kw: Any) -> Any:
        result = await real(conn, **kw)
        if kw["stored"] and not lost["n"]:
            lost["n"] += 1
            conn.terminate()
            raise ConnectionResetError("connection lost")
        return result

    monkeypatch.setattr(pg_lane_module, "execute", commit_then_lose_the_answer)
    rid = f"resp_{_tag()}"
    await store.save(record(rid, e.account_id, n=3))
    assert lost["n"] == 1
    assert await _rows(e, rid) == (1, 4)


@pytest.mark.postgres
async def test_a_refused_response_costs_nobody_their_charge_or_their_response(env: Any) -> None:
    e = await env(1000)
    store = ResponseStore(e.db.engine, retention_days=30, writer=e.writer)
    ticket = await e.ledger.hold(ident=e.ident(), inference_id=_tag(), credits=100)
    settled = e.ledger.settle(ticket, credits=25, description="m")
    good = store.queue(record(f"resp_{_tag()}", e.account_id))
    bad = store.queue(record("x" * 300, e.account_id))  # longer than the id column: refused
    assert await settled == 25
    await good
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        await bad
    assert await e.balance() == 975
    assert await e.count(LedgerEntry.__table__, reference_id=ticket.inference_id) == 1
    assert await e.count(Hold.__table__, account_id=e.account_id) == 0


@pytest.mark.postgres
async def test_a_save_waits_at_most_the_database_timeout_and_still_lands(env: Any) -> None:
    e = await env(1000)
    store = ResponseStore(e.db.engine, retention_days=30, writer=e.writer, timeout=0.3)
    rid = f"resp_{_tag()}"
    locker = await asyncpg.connect(e.db.url.replace("+asyncpg", "", 1))
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE responses IN SHARE MODE")
            with pytest.raises(DatabaseUnavailableError):
                await store.queue(record(rid, e.account_id))
    finally:
        await locker.close()
    await e.writer.flush()
    assert await _rows(e, rid) == (1, 2)


@pytest.mark.postgres
async def test_nul_characters_are_dropped_not_fatal(env: Any) -> None:
    """PostgreSQL text holds no NUL (SQLite does): an upstream's id or text carrying one is stored
    without it."""
    e = await env(1000)
    store = ResponseStore(e.db.engine, retention_days=30, writer=e.writer)
    tag = _tag()
    rec = record(f"resp_{tag}\x00", e.account_id)
    rec.model = "m\x00odel"
    await store.save(rec)
    assert await _rows(e, f"resp_{tag}") == (1, 2)
