"""Every exit path ends its hold: success, upstream error, timeout, client disconnect, cancellation.

Afterwards the holds table is empty, and the books balance (ledger == balance, charges == logs).
"""

from __future__ import annotations

import asyncio
import gc
import secrets

import pytest
import requests
from sqlalchemy import insert, select

from modelgate.app import build_app
from modelgate.doors.chat.door import metered_chat
from modelgate.gateway.metered import Caller
from modelgate.settings import Settings
from modelgate.store.db import Database
from modelgate.store.keys import KeyIdentity
from modelgate.store.ledger import Ledger
from modelgate.store.schema import Account, Hold, LedgerEntry
from modelgate.wire.chat import ChatRequest
from tests.billing.helpers import account_state, assert_books_balance, auth, chat, db_read, wait_for
from tests.conftest import MOCK_CONFIG
from tests.fakes.openai_server import Scripted

WORDS = " ".join(f"w{i}" for i in range(30))


def _holds_of(server, inference_id):
    async def fn(conn):
        return (await conn.execute(select(Hold.credits).where(Hold.inference_id == inference_id))).scalar()

    return db_read(server, fn)


def _charge_of(server, inference_id):
    async def fn(conn):
        q = select(LedgerEntry.credits).where(LedgerEntry.reference_id == inference_id)
        return (await conn.execute(q)).scalar()

    return db_read(server, fn)


def test_stream_disconnect_mid_stream_charges_produced_tokens(live_server, openai_upstream):
    email = "mid@example.com"
    key = live_server.create_key(email=email, usd=1.0)
    openai_upstream.script(Scripted(text=WORDS, chunk_delay=0.05))
    r = requests.post(
        f"{live_server.url}/v1/chat/completions",
        headers=auth(key),
        stream=True,
        timeout=10,
        json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    inference_id = r.headers["x-inference-id"]
    lines = r.iter_lines()
    assert next(line for line in lines if line).startswith(b"data: ")
    hold = _holds_of(live_server, inference_id)
    assert hold and hold > 0
    r.close()  # the client goes away mid-stream
    wait_for(lambda: account_state(live_server, email)["holds"] == 0)
    charged = -_charge_of(live_server, inference_id)
    assert 0 < charged < hold
    assert charged == 11 * 2 + 30 * 4  # exactly the upstream's usage: prompt 11, completion 30
    assert_books_balance(live_server, email, key, initial_credits=2_000_000, requests_made=1)


def test_stream_client_gone_before_first_byte(live_server, openai_upstream):
    email = "early@example.com"
    key = live_server.create_key(email=email, usd=1.0)
    openai_upstream.script(Scripted(text="a b c", delay=0.8))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{live_server.url}/v1/chat/completions",
            headers=auth(key),
            timeout=(2, 0.2),
            json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        )
    wait_for(lambda: account_state(live_server, email)["charges"] == 1, timeout=15)
    assert account_state(live_server, email)["holds"] == 0
    assert_books_balance(live_server, email, key, initial_credits=2_000_000, requests_made=1)


def test_non_stream_client_gone_is_settled(live_server, openai_upstream):
    email = "gone@example.com"
    key = live_server.create_key(email=email, usd=1.0)
    openai_upstream.script(Scripted(delay=0.6))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{live_server.url}/v1/chat/completions",
            headers=auth(key),
            timeout=(2, 0.2),
            json={"model": "echo", "messages": [{"role": "user", "content": "x"}]},
        )
    wait_for(lambda: account_state(live_server, email)["charges"] == 1)
    assert_books_balance(live_server, email, key, initial_credits=2_000_000, requests_made=1)


def test_upstream_error_and_timeout_release(live_server, openai_upstream):
    email = "fail@example.com"
    key = live_server.create_key(email=email, usd=1.0)
    openai_upstream.script(
        Scripted(status=500, body={"error": {"message": "boom"}}),
        Scripted(text=WORDS, reset_after_chunks=3),
        Scripted(delay=3.5),
    )
    assert chat(live_server, key).status_code == 502
    r = chat(live_server, key, stream=True)
    assert r.status_code == 200 and '"error"' in r.text
    assert chat(live_server, key).status_code == 504
    state = account_state(live_server, email)
    # The failures before any output are free; the stream that reset after output reached the
    # client is charged for the chunks produced (never a free request).
    assert state["holds"] == 0 and state["charges"] == 1 and 0 < state["charged"] < 2_000
    assert_books_balance(live_server, email, key, initial_credits=2_000_000, requests_made=3)


async def test_hold_cancelled_at_any_point_leaks_nothing(database_url):
    db = Database(database_url)
    await db.upgrade()
    async with db.engine.begin() as conn:
        acc = (
            await conn.execute(
                insert(Account)
                .values(email=f"c{secrets.token_hex(3)}@x", balance_credits=1000, is_admin=False)
                .returning(Account.id)
            )
        ).scalar_one()
    ledger = Ledger(db.engine)
    ident = KeyIdentity(
        key_id=1,
        account_id=acc,
        prefix="p",
        digest="d",
        is_management=False,
        scopes=None,
        limit_retention=None,
        limit_credits=None,
    )
    try:
        for steps in range(8):
            task = asyncio.ensure_future(ledger.hold(ident=ident, inference_id=f"inf-{steps}", credits=100))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await ledger.drain()
        async with db.engine.connect() as conn:
            assert (await conn.execute(select(Hold).where(Hold.account_id == acc))).all() == []
            balance = (await conn.execute(select(Account.balance_credits).where(Account.id == acc))).scalar()
        assert balance == 1000
    finally:
        await db.aclose()


async def test_gateway_task_cancelled_or_stream_dropped(database_url, openai_upstream, tmp_path):
    """In-process: cancel a non-stream call mid-upstream; drop an opened stream without reading it."""
    config = tmp_path / "mg.yaml"
    config.write_text(MOCK_CONFIG.format(base_url=openai_upstream.base_url))
    app = build_app(
        Settings(database_url=database_url, config=config, bootstrap=False, log_flush_interval=0.05)
    )
    openai_upstream.script(Scripted(delay=0.5), Scripted(text="one two three"))
    async with app.router.lifespan_context(app):
        state = app.state.mg
        from modelgate.accounts.service import create_key, get_or_create_account, top_up

        async with state.db.engine.begin() as conn:
            acc = await get_or_create_account(conn, email="inproc@example.com")
            await top_up(conn, account_id=acc, usd=1.0)
            raw = (await create_key(conn, account_id=acc)).key
        ident = await state.keys.authenticate(raw)
        body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
        task = asyncio.ensure_future(
            state.core.complete(
                metered_chat(ChatRequest.model_validate(body)),
                Caller(ident=ident, inference_id="cancelled-1", door="chat", path="/v1/chat/completions"),
            )
        )
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        result = await state.core.stream(
            metered_chat(ChatRequest.model_validate({**body, "stream": True})),
            Caller(ident=ident, inference_id="dropped-1", door="chat", path="/v1/chat/completions"),
        )
        del result
        gc.collect()
        for _ in range(200):
            await asyncio.sleep(0.02)
            async with state.db.engine.connect() as conn:
                holds = (await conn.execute(select(Hold))).all()
                charge = (
                    await conn.execute(
                        select(LedgerEntry.credits).where(LedgerEntry.reference_id == "dropped-1")
                    )
                ).scalar()
            if not holds and charge:
                break
        assert holds == [] and charge is not None and charge < 0
        async with state.db.engine.connect() as conn:
            assert (
                await conn.execute(select(LedgerEntry).where(LedgerEntry.reference_id == "cancelled-1"))
            ).all() == []
            balance = (await conn.execute(select(Account.balance_credits).where(Account.id == acc))).scalar()
        assert balance == 2_000_000 + charge


def test_prompt_estimate_is_capped_at_the_context_window(live_server, openai_upstream):
    """A prompt estimated above the model's context window (mock/echo: 8,192 tokens) is held as the
    window, not more: a balance of exactly that hold admits it (uncapped, ~40,000 tokens would be
    held and the request refused)."""
    email = "window@example.com"
    hold = 8192 * 2 + 512 * 4  # the window at $1/Mtok (2 credits a token), 512 output tokens at $2/Mtok
    key = live_server.create_key(email=email, usd=hold / 2_000_000)
    openai_upstream.script(
        Scripted(usage={"prompt_tokens": 8000, "completion_tokens": 10, "total_tokens": 8010})
    )
    r = chat(live_server, key, "word " * 20_000)
    assert r.status_code == 200, r.text
    wait_for(lambda: account_state(live_server, email)["holds"] == 0)
    assert account_state(live_server, email)["charged"] == 8000 * 2 + 10 * 4
    r = chat(live_server, key, "word " * 20_000)  # what is left no longer covers the window
    assert r.status_code in (402, 403)
