"""An adapter that knows its counts exactly (``drain_on_disconnect = False``, as the local model)
reports them through ``ProviderCall.on_usage``; a stream the client abandons is charged the last
report, not an estimate, and nothing is written into objects another layer reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from modelgate.accounts.service import create_key, get_or_create_account, top_up
from modelgate.app import build_app
from modelgate.doors.chat.door import metered_chat
from modelgate.gateway.metered import Caller, Event
from modelgate.providers.base import Chunk, ProviderCall, Usage
from modelgate.settings import Settings
from modelgate.store.schema import Hold, LedgerEntry
from modelgate.wire.chat import ChatRequest
from tests.conftest import MOCK_CONFIG
from tests.fakes.openai_server import FakeOpenAI, Scripted

PROMPT_TOKENS = 7  # what the adapter reports: far from the door's prompt estimate


class ExactCounts:
    """The mock's adapter, made one that stops at once and reports exact counts as it goes."""

    drain_on_disconnect = False

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.reported: list[Usage] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def stream(self, call: ProviderCall) -> AsyncIterator[Chunk]:
        produced = 0
        async for chunk in self._inner.stream(call):
            if chunk.choices:
                produced += 1
                usage = Usage(prompt_tokens=PROMPT_TOKENS, completion_tokens=produced)
                self.reported.append(usage)
                call.on_usage(usage)
            yield chunk


async def test_an_abandoned_stream_is_charged_the_adapters_last_report(
    database_url: str, openai_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    config = tmp_path / "mg.yaml"
    config.write_text(MOCK_CONFIG.format(base_url=openai_upstream.base_url))
    app = build_app(
        Settings(database_url=database_url, config=config, bootstrap=False, log_flush_interval=0.05)
    )
    openai_upstream.script(Scripted(text=" ".join(f"w{i}" for i in range(40)), chunk_delay=0.02))
    async with app.router.lifespan_context(app):
        state = app.state.mg
        adapter = ExactCounts(state.core.providers["mock"])
        state.core.providers["mock"] = adapter  # the router shares the dict
        async with state.db.engine.begin() as conn:
            acc = await get_or_create_account(conn, email="exact@example.com")
            await top_up(conn, account_id=acc, usd=1.0)
            raw = (await create_key(conn, account_id=acc)).key
        ident = await state.keys.authenticate(raw)
        body = {"model": "echo", "stream": True, "messages": [{"role": "user", "content": "hi " * 50}]}
        caller = Caller(ident=ident, inference_id="exact-1", door="chat", path="/v1/chat/completions")
        stream = await state.core.stream(metered_chat(ChatRequest.model_validate(body)), caller)
        seen = 0
        async for item in stream.events:
            seen += isinstance(item, Event)
            if seen >= 3:
                break
        await stream.events.aclose()  # type: ignore[attr-defined]  # the client went away
        charge = None
        for _ in range(250):
            async with state.db.engine.connect() as conn:
                holds = (await conn.execute(select(Hold))).all()
                q = select(LedgerEntry.credits).where(LedgerEntry.reference_id == "exact-1")
                charge = (await conn.execute(q)).scalar()
            if not holds and charge is not None:
                break
            await asyncio.sleep(0.02)
        last = adapter.reported[-1]
        assert 3 <= last.completion_tokens < 40
        # echo: input 1 USD/Mtok = 2 credits a token, output 2 USD/Mtok = 4 credits a token
        assert holds == [] and charge == -(PROMPT_TOKENS * 2 + last.completion_tokens * 4)
