"""Body logging (issue 30), over HTTP on both floors (SQLite file: the group-commit writer;
PostgreSQL: the settle lane): off by default (nothing stored, the detail says how to enable it); an
operator turns it on in the console and a chat request's prompt and answer (whole, and a stream
assembled) are on its detail page and in its JSON, and in the operator's lookup; never for another
account, by URL or by JSON; secrets masked; the switch reaches another instance without a restart;
the retention sweep deletes old bodies (idempotent)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.app import build_app
from modelgate.settings import Settings
from modelgate.store.db import Database
from modelgate.store.schema import RequestBody
from tests.conftest import LiveServer, _ServerThread
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.web.helpers import create_key, csrf, eventually, logged_in, make_account, with_db

PROMPT = "what is the capital of France?"


def _chat(server: LiveServer, key: str, *, stream: bool = False, extra: dict[str, Any] | None = None) -> str:
    body = {"model": "echo", "messages": [{"role": "user", "content": PROMPT}], **(extra or {})}
    url = f"{server.url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {key}"}
    if stream:
        with httpx.stream("POST", url, headers=headers, json={**body, "stream": True}, timeout=30) as r:
            assert r.status_code == 200
            r.read()
            return r.headers["x-inference-id"]
    r = httpx.post(url, headers=headers, json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.headers["x-inference-id"]


def _detail(server: LiveServer, email: str, rid: str) -> dict[str, Any] | None:
    with logged_in(server, email) as c:
        r = c.get(f"/app/requests/{rid}", headers={"Accept": "application/json"})
        return r.json()["data"][0] if r.status_code == 200 else None


def _bodies_stored(server: LiveServer) -> int:
    async def work(conn: AsyncConnection) -> int:
        return int((await conn.execute(select(func.count()).select_from(RequestBody))).scalar_one())

    return with_db(server, work)


def _turn_on(server: LiveServer, operator: str, *, on: bool = True, days: str = "7") -> httpx.Response:
    with logged_in(server, operator) as c:
        token = csrf(c.get("/admin/settings"))
        data = {"csrf_token": token, "body_retention_days": days, **({"body_logging": "1"} if on else {})}
        return c.post("/admin/settings/bodies", data=data)


def test_off_by_default_nothing_is_stored_and_the_detail_says_how_to_enable(
    web_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    make_account(web_server, "user@example.com", usd=5)
    key = create_key(web_server, email="user@example.com", usd=0)
    rid = _chat(web_server, key)
    found = eventually(lambda: _detail(web_server, "user@example.com", rid), what="the log row")
    assert found["body"] is None
    with logged_in(web_server, "user@example.com") as c:
        page = c.get(f"/app/requests/{rid}").text
    assert "not logged" in page and "Body logging" in page and PROMPT not in page
    assert _bodies_stored(web_server) == 0


def test_on_stores_prompt_and_answer_for_its_own_account_only(
    web_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    make_account(web_server, "op@example.com", operator=True, usd=5)
    make_account(web_server, "user@example.com", usd=5)
    make_account(web_server, "other@example.com", usd=5)
    # Validation: a retention of 0 or not a number is refused with the reason, nothing saved.
    refused = _turn_on(web_server, "op@example.com", days="0")
    assert refused.status_code == 400 and "days" in refused.text
    assert _turn_on(web_server, "op@example.com").status_code == 303
    with logged_in(web_server, "op@example.com") as c:
        page = c.get("/admin/settings").text
    assert 'id="body-logging-state">on' in page and page.count('id="body-logging"') == 1
    # The page's title is its title (it once held the sign-in security form's markup).
    assert "<title>Console · Settings · modelgate</title>" in page
    key = create_key(web_server, email="user@example.com", usd=0)
    whole = _chat(web_server, key, extra={"metadata": {"note": "x"}, "api_key": "sk-leaked-secret-123"})
    openai_upstream.script(Scripted(text="Paris is the capital", chunk_delay=0.01))
    streamed = _chat(web_server, key, stream=True)

    got = eventually(
        lambda: (d := _detail(web_server, "user@example.com", whole)) and d["body"] and d, what="whole body"
    )
    body = got["body"]
    assert PROMPT in body["request"] and PROMPT in body["response"]  # the fake echoes the prompt
    assert "sk-leaked-secret-123" not in body["request"] and "[masked]" in body["request"]
    assert body["request_truncated"] is False and body["response_truncated"] is False
    got = eventually(
        lambda: (d := _detail(web_server, "user@example.com", streamed)) and d["body"] and d, what="stream"
    )
    assert '"content": "Paris is the capital' in got["body"]["response"]  # assembled from its chunks
    with logged_in(web_server, "user@example.com") as c:
        page = c.get(f"/app/requests/{streamed}").text
    assert "Paris is the capital" in page and 'id="body-request"' in page

    # Never another account's: not by URL, not by JSON, and the bodies are not on any page of theirs.
    with logged_in(web_server, "other@example.com") as c:
        for rid in (whole, streamed):
            r = c.get(f"/app/requests/{rid}")
            assert r.status_code == 404 and PROMPT not in r.text and "Paris" not in r.text
            r = c.get(f"/app/requests/{rid}", headers={"Accept": "application/json"})
            assert r.status_code == 404 and PROMPT not in r.text
    # The operator's lookup shows them.
    with logged_in(web_server, "op@example.com") as c:
        page = c.get("/admin/requests", params={"id": streamed}).text
    assert "Paris is the capital" in page and PROMPT in page

    # Off again: new requests store nothing, the stored ones stay until their retention.
    assert _turn_on(web_server, "op@example.com", on=False).status_code == 303
    stored = _bodies_stored(web_server)
    later = _chat(web_server, key)
    eventually(lambda: _detail(web_server, "user@example.com", later), what="the later row")
    assert _detail(web_server, "user@example.com", later)["body"] is None  # type: ignore[index]
    assert _bodies_stored(web_server) == stored


def test_retention_sweep_deletes_old_bodies_and_is_idempotent(
    web_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    make_account(web_server, "op@example.com", operator=True, usd=5)
    assert _turn_on(web_server, "op@example.com", days="2").status_code == 303
    key = create_key(web_server, email="op@example.com", usd=0)
    old, new = _chat(web_server, key), _chat(web_server, key)
    eventually(lambda: _bodies_stored(web_server) == 2, what="two bodies")

    async def age(conn: AsyncConnection) -> None:
        then = datetime.now(UTC) - timedelta(days=3)
        await conn.execute(update(RequestBody).where(RequestBody.inference_id == old).values(created_at=then))

    with_db(web_server, age)
    bodies = web_server.app.state.mg.core.bodies
    assert bodies.retention_days == 2

    async def sweep_twice() -> list[int]:
        db = Database(web_server.settings.database_url)
        try:
            return [await bodies.sweep(db.engine), await bodies.sweep(db.engine)]
        finally:
            await db.aclose()

    assert asyncio.run(sweep_twice()) == [1, 0]
    assert _detail(web_server, "op@example.com", old)["body"] is None  # type: ignore[index]
    assert _detail(web_server, "op@example.com", new)["body"] is not None  # type: ignore[index]


def test_the_switch_reaches_another_instance_without_a_restart(
    web_server: LiveServer, openai_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    """Two instances on one database: the console of the first turns body logging on; the second,
    never restarted, stores its requests' bodies after its next poll."""
    settings = Settings(
        database_url=web_server.settings.database_url,
        config=web_server.settings.config,
        bootstrap=False,
        log_flush_interval=0.05,
        catalog_poll_interval=0.2,
    )
    app = build_app(settings)
    second = _ServerThread(app)
    second.start()
    try:
        other = LiveServer(url=f"http://127.0.0.1:{second.server.config.port}", settings=settings, app=app)
        make_account(web_server, "op@example.com", operator=True, usd=5)
        key = create_key(web_server, email="op@example.com", usd=0)
        before = _chat(other, key)
        assert _turn_on(web_server, "op@example.com").status_code == 303
        eventually(lambda: other.app.state.mg.core.bodies.enabled, what="the second instance's poll")
        after = _chat(other, key)
        eventually(lambda: (_detail(web_server, "op@example.com", after) or {}).get("body"), what="its body")
        assert _detail(web_server, "op@example.com", before)["body"] is None  # type: ignore[index]
    finally:
        second.stop()
