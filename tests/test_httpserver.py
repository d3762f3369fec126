"""Slow or idle clients against a live server running ``modelgate serve``'s HTTP protocol
(``httpserver.py``) with short limits: idle connections, trickled headers and unfinished bodies are
closed after their timeout (408 when a request had begun), normal requests are served meanwhile,
a slow upstream answer is never cut, and beyond ``max_connections`` a request gets 503 at once.

Before: 20/20 idle, partial-header and partial-body connections were still open after 130 s."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import pytest
import requests

from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.outages.conftest import until
from tests.served import until_closed

LIMIT = 1.0  # header and body timeouts in these tests
SAFETY = 30.0  # a socket still open this long after its deadline: the server never closed it

CHAT = b'{"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}'


def _open(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=SAFETY)


def _chat(server: LiveServer, key: str) -> requests.Response:
    return requests.post(
        f"{server.url}/v1/chat/completions",
        data=CHAT,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=SAFETY,
    )


def test_slow_and_idle_clients_are_cut_while_normal_requests_are_served(
    make_live_server: Any, openai_upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    server: LiveServer = make_live_server(
        MOCK_CONFIG.format(base_url=openai_upstream.base_url),
        http_header_timeout=LIMIT,
        http_body_timeout=LIMIT,
    )
    key = server.create_key()
    idle = [_open(server) for _ in range(8)]
    trickled = [_open(server) for _ in range(6)]
    for s in trickled:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nAuthori")
    unfinished = [_open(server) for _ in range(6)]
    for s in unfinished:
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(CHAT) + 100).encode() + b"\r\n\r\n"
        )
        s.sendall(head + CHAT[:20])
    mgmt = server.create_key(management=True, name="mgmt")
    service = _open(server)  # a service endpoint (FastAPI) reading its body
    service.sendall(
        b"POST /v1/keys HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + mgmt.encode() + b"\r\n"
        b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name'
    )
    unfinished.append(service)
    kept_alive = _open(server)
    kept_alive.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")

    # Served meanwhile, with 21 slow sockets open.
    for _ in range(5):
        assert _chat(server, key).status_code == 200
        assert requests.get(f"{server.url}/health", timeout=SAFETY).status_code == 200

    for s in idle:
        assert until_closed(s) == b""
    for s in trickled + unfinished:
        assert until_closed(s).startswith(b"HTTP/1.1 408 "), "a begun request is answered 408"
    answered = until_closed(kept_alive)  # its response, then closed once idle
    assert answered.startswith(b"HTTP/1.1 200 ") and answered.count(b"HTTP/1.1") == 1
    assert _chat(server, key).status_code == 200
    # A client cut off is not a server error: nothing logged as one.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records


def test_a_slow_answer_is_not_cut(make_live_server: Any, openai_upstream: FakeOpenAI) -> None:
    """Only what the client owes is timed: an upstream slower than both limits is still served,
    streamed or not."""
    server: LiveServer = make_live_server(
        MOCK_CONFIG.format(base_url=openai_upstream.base_url),
        http_header_timeout=LIMIT,
        http_body_timeout=LIMIT,
    )
    key = server.create_key()
    openai_upstream.script(Scripted(delay=2.5 * LIMIT))
    assert _chat(server, key).status_code == 200
    openai_upstream.script(Scripted(chunks=None, chunk_delay=0.6 * LIMIT, text="one two three four"))
    r = requests.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=SAFETY,
    )
    assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]"), r.text


def test_connections_beyond_the_cap_get_503_until_slots_free_up(
    make_live_server: Any, openai_upstream: FakeOpenAI
) -> None:
    server: LiveServer = make_live_server(
        MOCK_CONFIG.format(base_url=openai_upstream.base_url),
        http_header_timeout=2 * LIMIT,
        max_connections=6,
    )
    hogs = [_open(server) for _ in range(6)]
    until(
        lambda: requests.get(f"{server.url}/health", timeout=SAFETY).status_code == 503,
        "the cap reached: refused at once",
        within=SAFETY,
    )
    closers = [threading.Thread(target=until_closed, args=(s,)) for s in hogs]
    for t in closers:
        t.start()
    until(
        lambda: requests.get(f"{server.url}/health", timeout=SAFETY).status_code == 200,
        "served again once the idle connections timed out",
        within=SAFETY,
    )
    for t in closers:
        t.join(SAFETY)
