"""The database cut (connections refused and reset) or frozen (nothing answered) under a live
gateway, on PostgreSQL; on SQLite, the file write-locked by another process.

Before: PostgreSQL cut → the first requests hung 30.6 s then 503, requests in the writer's retry
window got an instant 500; frozen → requests hung. Now every door answers 503 with Retry-After in
its own envelope within ``database_timeout`` (plus a margin for a busy machine), /ready says not
ready, and once the database is back every request is logged (the refused ones included) and the
books are exact: charged == logged == balance delta, no hold left."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from modelgate.app import build_app
from modelgate.settings import Settings, sqlite_path
from tests.conftest import LiveServer, _create_schema, _ServerThread, _truncate_pg
from tests.fakes.chaos_proxy import ChaosProxy
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.outages.conftest import (
    DOORS,
    assert_books_exact,
    assert_unavailable,
    call,
    outage_config,
    target_port,
    through_proxy,
    until,
)

BOUND = 1.0  # database_timeout in these tests
ANSWERED_WITHIN = BOUND + 4.0  # a margin for a busy machine, far below the 30.6 s of before


def assert_ok(r: requests.Response, door: str) -> None:
    assert r.status_code == 200, (door, r.status_code, r.text)


def _each_door(url: str, key: str, check: Callable[[requests.Response, str], None]) -> set[str]:
    ids = set()
    for door in DOORS:
        r, seconds = call(url, key, door)
        check(r, door)
        assert seconds < ANSWERED_WITHIN, (door, seconds)
        ids.add(r.headers["x-inference-id"])
    return ids


@pytest.fixture
def pg_gateway(
    pg_database: str, openai_upstream: FakeOpenAI, tmp_path: Path
) -> Iterator[Callable[[], tuple[LiveServer, ChaosProxy, str]]]:
    """A gateway whose PostgreSQL is behind a proxy; returns it, the proxy and the direct URL."""
    threads: list[_ServerThread] = []
    proxies: list[ChaosProxy] = []

    def start() -> tuple[LiveServer, ChaosProxy, str]:
        proxy = ChaosProxy(target_port(pg_database, 5432))
        proxies.append(proxy)
        config = tmp_path / "modelgate.yaml"
        config.write_text(outage_config(openai_upstream))
        asyncio.run(_create_schema(pg_database))
        settings = Settings(
            database_url=through_proxy(pg_database, proxy),
            config=config,
            bootstrap=False,
            log_flush_interval=0.05,
            database_timeout=BOUND,
            key_cache_ttl=3600,
        )
        thread = _ServerThread(build_app(settings), settings=settings)
        thread.start()
        threads.append(thread)
        url = f"http://127.0.0.1:{thread.server.config.port}"
        return LiveServer(url=url, settings=settings, app=thread.server.config.app), proxy, pg_database

    yield start
    for proxy in proxies:
        proxy.restore()
    for thread in threads:
        thread.stop()
    for proxy in proxies:
        proxy.close()
    _truncate_pg(pg_database)


def _ready(url: str) -> int:
    return requests.get(f"{url}/ready", timeout=30).status_code


@pytest.mark.postgres
@pytest.mark.parametrize("failure", ["kill", "freeze"])
def test_postgres_outage_503_then_exact_books(
    pg_gateway: Any, openai_upstream: FakeOpenAI, failure: str
) -> None:
    server, proxy, direct = pg_gateway()
    email = f"pg-{failure}@example.com"
    key = server.create_key(email=email, usd=5.0)
    ids = _each_door(server.url, key, assert_ok)  # the key is cached from here on
    assert _ready(server.url) == 200
    stored, _ = call(server.url, key, "responses")  # stored (store defaults to true)
    stored_id = stored.json()["id"]
    ids.add(stored.headers["x-inference-id"])

    # Requests in flight when the database goes (a whole answer, a stream that ends during the
    # outage): answered within the bound, and charged once the database is back.
    openai_upstream.script(
        Scripted(delay=1.5), Scripted(chunk_delay=0.4, text="one two three four five six seven")
    )
    answers: list[requests.Response] = []

    def send(stream: bool) -> None:
        path, body = DOORS["chat"]
        answers.append(
            requests.post(
                server.url + path,
                json={**body, "stream": stream},
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
        )

    workers = []
    for stream in (False, True):
        seen = len(openai_upstream.requests)
        workers.append(threading.Thread(target=send, args=(stream,)))
        workers[-1].start()
        until(lambda seen=seen: len(openai_upstream.requests) > seen, "the request reached the upstream")
    getattr(proxy, failure)()
    for worker in workers:
        worker.join(60)
    assert len(answers) == 2 and all(r.status_code == 200 for r in answers), answers
    streamed = next(r for r in answers if r.headers["content-type"].startswith("text/event-stream"))
    assert streamed.text.rstrip().endswith("data: [DONE]"), streamed.text
    ids |= {r.headers["x-inference-id"] for r in answers}

    for _ in range(2):  # the first ones wait the bound, later ones are refused at once
        ids |= _each_door(server.url, key, assert_unavailable)
    # A Responses request continuing a stored conversation reads it first: bounded too.
    path, body = DOORS["responses"]
    followed = requests.post(
        server.url + path,
        json={**body, "previous_response_id": stored_id},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert_unavailable(followed, "responses")
    assert _ready(server.url) == 503
    proxy.restore()
    until(lambda: call(server.url, key, "chat")[0].status_code == 200, "served once PostgreSQL is back")
    until(lambda: _ready(server.url) == 200, "ready again")
    ids |= _each_door(server.url, key, assert_ok)
    assert_books_exact(direct, email, ids)


@pytest.fixture
def sqlite_gateway(
    make_live_server: Any, openai_upstream: FakeOpenAI, database_url: str
) -> Callable[[], LiveServer]:
    if not database_url.startswith("sqlite"):
        pytest.skip("a SQLite file")
    return lambda: make_live_server(
        outage_config(openai_upstream), database_timeout=BOUND, key_cache_ttl=3600
    )


def test_sqlite_locked_by_another_process_503_then_exact_books(sqlite_gateway: Any) -> None:
    """Another process holds SQLite's write lock (a maintenance script, a backup, an operator's
    sqlite3 shell inside a transaction): holds cannot be written. Requests get 503 within the
    bound, settles and log rows wait for the lock, and nothing is lost once it is released."""
    server = sqlite_gateway()
    email = "sqlite-locked@example.com"
    key = server.create_key(email=email, usd=5.0)
    ids = _each_door(server.url, key, assert_ok)
    path = sqlite_path(server.settings.database_url)
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the write lock, as another process would hold it
        for _ in range(2):
            ids |= _each_door(server.url, key, assert_unavailable)
        assert _ready(server.url) == 503  # reads answer, writes do not
    finally:
        other.execute("ROLLBACK")
        other.close()
    until(lambda: call(server.url, key, "chat")[0].status_code == 200, "served once the lock is released")
    until(lambda: _ready(server.url) == 200, "ready again")
    ids |= _each_door(server.url, key, assert_ok)
    assert_books_exact(server.settings.database_url, email, ids)
