"""SIGTERM to a real ``modelgate serve`` process (drain.py): readiness goes false first, every
response says ``Connection: close``, idle kept-alive connections are closed, and a second signal stops
the streams in flight at once, each settled for what it produced and logged.

Before drain.py: /ready kept answering 200 after SIGTERM and an idle kept-alive connection stayed open
until uvicorn's keep-alive timeout; a second SIGTERM changed nothing."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from pathlib import Path

import requests
from sqlalchemy import text

from modelgate.store.db import Database
from tests.books import books
from tests.conftest import MOCK_CONFIG, _free_port
from tests.served import LONG, SAFETY, WORDS, Instance, Load, PacedUpstream, account, until_closed

# An agent's turn of ~40 s (a chunk every 300 ms): far longer than the test waits for anything.
TURN = LONG + " " + " ".join([WORDS] * 5)


def test_sigterm_drains_then_a_second_signal_cuts_and_settles(tmp_path: Path) -> None:
    upstream = PacedUpstream().serve_in_thread()
    config = tmp_path / "modelgate.yaml"
    config.write_text(MOCK_CONFIG.format(base_url=upstream.base_url))
    url = f"sqlite:///{tmp_path}/modelgate.db"
    key, account_id, credits_before = asyncio.run(account(url))
    # A long notice: the listener stays open while the load balancer is told (so /ready can be asked).
    instance = Instance(tmp_path, _free_port(), config, url, "drain", MODELGATE_DRAIN_NOTICE="300")
    base = f"http://127.0.0.1:{instance.port}"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        instance.start()
        idle = socket.create_connection(("127.0.0.1", instance.port), timeout=SAFETY)
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status":"ok"}'):  # the whole answer: the connection is idle now
            answer += idle.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer

        turn = Load(base, key)
        result: list[str | None] = []
        thread = threading.Thread(target=lambda: result.append(turn.one(requests.Session(), prompt=TURN)))
        thread.start()
        assert turn.started.wait(SAFETY)
        assert instance.proc is not None
        instance.proc.send_signal(signal.SIGTERM)

        assert until_closed(idle) == b""  # the idle connection is closed, nothing sent on it
        ready = requests.get(f"{base}/ready", timeout=SAFETY)  # still accepting during the notice
        assert ready.status_code == 503 and ready.json()["status"] == "draining", ready.text
        assert ready.headers["connection"] == "close"
        chat = requests.post(
            f"{base}/v1/chat/completions",
            json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
            timeout=SAFETY,
        )
        assert chat.status_code == 200 and chat.headers["connection"] == "close", chat.headers
        assert thread.is_alive(), "the turn is still streaming"

        instance.proc.send_signal(signal.SIGTERM)  # the second signal: stop now
        assert instance.proc.wait(SAFETY) in (0, -signal.SIGTERM), instance.log()
        thread.join(SAFETY)
    finally:
        if instance.proc is not None and instance.proc.poll() is None:
            instance.proc.kill()
            instance.proc.wait(SAFETY)
        upstream.stop_thread()
    assert result and result[0] is not None, "the turn was cut, not waited for"
    assert "drained" in instance.log(), instance.log()

    b = books(url, account_id=account_id)
    assert b.holds == 0, "a hold was left open"
    assert b.log_rows == 2
    assert b.charged == b.logged_total == credits_before - b.balance, b
    statuses = asyncio.run(_statuses(url, account_id))
    assert sorted(statuses) == [(200, False), (499, True)], statuses  # the cut turn: a client gone
    assert b.charged > 0


async def _statuses(url: str, account_id: int) -> list[tuple[int, bool]]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT http_status, stream FROM request_logs WHERE account_id = :a"), {"a": account_id}
            )
            return [(int(r[0]), bool(r[1])) for r in rows]
    finally:
        await db.aclose()
