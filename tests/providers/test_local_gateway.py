"""The embedded models behind a real server: one request can no longer take the gateway down.

- The schema that crashed the whole process (``maxLength`` 22000: SIGSEGV inside libllama) is a
  400 naming the field, through the chat and the Responses doors; the worker never died.
- A worker killed mid-generation (SIGKILL) costs the requests in flight a 502 in the door's
  envelope, nothing more: the hold is released (a stream is charged the tokens it produced, as
  for any upstream failure after output), ``/health`` answers throughout, the next request is
  served by a restarted worker. The same for the embedding worker.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
from typing import Any

import pytest
import requests

from modelgate.providers.local import LocalProvider
from tests.billing.helpers import account_state, all_logs, assert_books_balance, auth, wait_for
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.local_model

CRASHER = {"type": "object", "properties": {"summary": {"type": "string", "maxLength": 22000}}}


@pytest.fixture
def server(make_live_server: Any, openai_upstream: FakeOpenAI) -> LiveServer:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("onnxruntime")
    live: LiveServer = make_live_server(MOCK_CONFIG.format(base_url=openai_upstream.base_url))
    return live


def local_of(server: LiveServer) -> LocalProvider:
    provider: LocalProvider = server.app.state.mg.core.providers["local"]
    return provider


def post(server: LiveServer, path: str, key: str, body: dict[str, Any], **kw: Any) -> requests.Response:
    return requests.post(f"{server.url}{path}", headers=auth(key), json=body, timeout=300, **kw)


def healthy(server: LiveServer) -> bool:
    return requests.get(f"{server.url}/health", timeout=60).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no money moves here
def test_schema_beyond_the_bounds_is_a_400_through_every_door(server: LiveServer) -> None:
    key = server.create_key()
    chat = post(
        server,
        "/v1/chat/completions",
        key,
        {
            "model": "smollm2",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": CRASHER}},
        },
    )
    assert chat.status_code == 400, chat.text
    error = chat.json()["error"]
    assert error["param"] == "response_format.json_schema.schema.properties.summary.maxLength"
    assert "22000" in error["message"] and "1000" in error["message"]

    schema = {"type": "object", "properties": {"summary": {"type": "string", "maxLength": 30000}}}
    responses = post(
        server,
        "/v1/responses",
        key,
        {
            "model": "smollm2",
            "input": "hi",
            "max_output_tokens": 8,
            "text": {"format": {"type": "json_schema", "name": "x", "schema": schema}},
        },
    )
    assert responses.status_code == 400, responses.text
    error = responses.json()["error"]
    assert error["param"] == "text.format.schema.properties.summary.maxLength"  # where this client wrote it
    assert error["message"].startswith("text.format.schema.properties.summary.maxLength: 30000")

    messages = requests.post(
        f"{server.url}/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={
            "model": "smollm2",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
            "output_config": {"format": {"type": "json_schema", "schema": CRASHER}},
        },
        timeout=300,
    )
    assert messages.status_code == 400, messages.text
    assert messages.json()["type"] == "error"  # Anthropic's envelope, naming its own field
    assert messages.json()["error"]["message"].startswith("output_config.format.schema.properties.summary")

    # Within the bounds: served (the bound is what llama.cpp handles, not a refusal of big schemas).
    fine = {"type": "object", "properties": {"summary": {"type": "string", "maxLength": 1000}}}
    ok = post(
        server,
        "/v1/chat/completions",
        key,
        {
            "model": "smollm2",
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": fine}},
        },
    )
    assert ok.status_code == 200, ok.text
    assert healthy(server) and local_of(server).engine.worker.restarts == 0


def _kill_when_generating(server: LiveServer, provider: LocalProvider, before: int) -> int:
    wait_for(lambda: provider.engine.stats.generated_tokens >= before + 3, timeout=300)
    pid = provider.engine.pid
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    return pid


STORY = {"model": "smollm2", "messages": [{"role": "user", "content": "Write a very long story."}]}


def test_a_killed_chat_worker_costs_one_502_and_the_next_request_is_served(server: LiveServer) -> None:
    email = "crash@example.com"
    key = server.create_key(email=email, usd=1.0)
    provider = local_of(server)
    assert post(server, "/v1/chat/completions", key, {**STORY, "max_tokens": 2}).status_code == 200
    # The settle is written after the answer: read the books once it is in (a loaded machine read
    # the balance before the first charge, and the later comparison was off by that charge).
    wait_for(lambda: account_state(server, email)["holds"] == 0, timeout=30)
    start = account_state(server, email)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        before = provider.engine.stats.generated_tokens
        whole = pool.submit(post, server, "/v1/chat/completions", key, {**STORY, "max_tokens": 4000})
        first_pid = _kill_when_generating(server, provider, before)
        assert healthy(server)  # the gateway never stopped
        r = whole.result()
    assert r.status_code == 502, r.text
    body = r.json()
    assert body["error"]["type"] == "upstream_error" and body["error"]["code"] == "worker_crashed"
    assert "SIGKILL" in body["error"]["message"] and body["statusCode"] == 502
    wait_for(lambda: account_state(server, email)["holds"] == 0, timeout=30)
    assert account_state(server, email)["balance"] == start["balance"]  # released, not charged

    # The next request is served by a restarted worker.
    again = post(server, "/v1/chat/completions", key, {**STORY, "max_tokens": 3, "temperature": 0})
    assert again.status_code == 200, again.text
    assert provider.engine.pid not in (None, first_pid) and provider.engine.worker.restarts == 1
    assert_books_balance(
        server, email, key, initial_credits=start["balance"] + start["charged"], requests_made=3
    )
    rows = all_logs(server, key)
    assert sorted(row["status"] for row in rows) == ["failed", "succeeded", "succeeded"]  # one row each


def test_a_killed_chat_worker_ends_a_stream_with_an_error_frame_charged_for_what_it_produced(
    server: LiveServer,
) -> None:
    email = "crash-stream@example.com"
    key = server.create_key(email=email, usd=1.0)
    provider = local_of(server)
    provider.engine.start().result(timeout=300)
    start = account_state(server, email)
    r = post(server, "/v1/chat/completions", key, {**STORY, "max_tokens": 4000, "stream": True}, stream=True)
    assert r.status_code == 200
    lines = r.iter_lines()
    frames = []
    for line in lines:
        if line.startswith(b"data: {"):
            frames.append(json.loads(line[6:]))
            if len(frames) == 3:
                break
    os.kill(provider.engine.pid or 0, signal.SIGKILL)
    for line in lines:
        if line.startswith(b"data: {"):
            frames.append(json.loads(line[6:]))
    errors = [f["error"] for f in frames if "error" in f]
    assert len(errors) == 1 and errors[0]["code"] == "worker_crashed", frames[-3:]
    assert "error" in frames[-1]  # the error frame ends the stream
    wait_for(lambda: account_state(server, email)["holds"] == 0, timeout=30)
    state = account_state(server, email)
    assert state["charged"] > 0  # output reached the client: charged for it, never a free request
    assert_books_balance(server, email, key, initial_credits=start["balance"], requests_made=1)
    assert healthy(server)
    assert post(server, "/v1/chat/completions", key, {**STORY, "max_tokens": 2}).status_code == 200


def test_a_killed_embedding_worker_costs_one_502_and_the_next_request_is_served(server: LiveServer) -> None:
    email = "crash-embed@example.com"
    key = server.create_key(email=email, usd=1.0)
    provider = local_of(server)
    small = {"model": "all-minilm-l6-v2", "input": ["warm up"]}
    assert post(server, "/v1/embeddings", key, small).status_code == 200
    start = account_state(server, email)
    first_pid = provider.embedder.pid
    assert first_pid is not None and first_pid not in (os.getpid(), provider.engine.pid)
    big = {
        "model": "all-minilm-l6-v2",
        "input": [f"Sentence {i} is about a cat on a mat." for i in range(2000)],
    }
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, server, "/v1/embeddings", key, big)
        inc = provider.embedder.worker._inc
        assert inc is not None
        wait_for(lambda: bool(inc.pending), timeout=60)
        os.kill(first_pid, signal.SIGKILL)
        assert healthy(server)
        r = future.result()
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "worker_crashed"
    wait_for(lambda: account_state(server, email)["holds"] == 0, timeout=30)
    assert account_state(server, email)["balance"] == start["balance"]
    assert post(server, "/v1/embeddings", key, small).status_code == 200
    assert provider.embedder.pid not in (None, first_pid)
