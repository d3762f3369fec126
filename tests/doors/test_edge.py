"""The edge every request passes: one body limit for every endpoint, applied while reading, and a
stream whose upstream reports no usage charged for everything the upstream produced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from modelgate.doors.chat.door import parse_chat_request
from modelgate.doors.estimate import prompt_tokens_upper_bound
from tests.billing.helpers import account_state, wait_for
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted

LIMIT = 4096


def _server(make_live_server: Any, upstream: FakeOpenAI) -> LiveServer:
    server: LiveServer = make_live_server(
        MOCK_CONFIG.format(base_url=upstream.base_url), max_body_bytes=LIMIT
    )
    return server


def _chunked(size: int) -> Iterator[bytes]:
    for _ in range(size // 1024):
        yield b"x" * 1024


def test_one_body_limit_for_every_endpoint(make_live_server: Any, openai_upstream: FakeOpenAI) -> None:
    server = _server(make_live_server, openai_upstream)
    key = server.create_key()
    mgmt = server.create_key(management=True)
    auth = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    big = b'{"name": "' + b"k" * (LIMIT * 2) + b'"}'
    for path in ("/v1/keys", "/v1/chat/completions", "/app/playground/chat", "/app/login", "/v2/logs"):
        if path == "/v1/keys":  # reads its body only for a management key
            auth = {**auth, "Authorization": f"Bearer {mgmt}"}
        else:
            auth = {**auth, "Authorization": f"Bearer {key}"}
        declared = requests.post(f"{server.url}{path}", data=big, headers=auth, timeout=60)
        assert declared.status_code == 413, (path, declared.status_code, declared.text[:200])
        if path in ("/app/playground/chat", "/v2/logs", "/app/login"):
            continue  # refused before any body byte is read (no session / GET-only): nothing to limit
        streamed = requests.post(f"{server.url}{path}", data=_chunked(LIMIT * 4), headers=auth, timeout=60)
        assert streamed.status_code == 413, (path, streamed.status_code, streamed.text[:200])
    mgmt_auth = {"Authorization": f"Bearer {mgmt}", "content-type": "application/json"}
    body = requests.post(f"{server.url}/v1/keys", data=big, headers=mgmt_auth, timeout=60).json()
    assert body["statusCode"] == 413 and "larger than" in body["message"]
    anthropic = requests.post(f"{server.url}/v1/messages", data=big, headers={"x-api-key": key}, timeout=60)
    assert anthropic.status_code == 413
    assert anthropic.json()["error"]["type"] == "request_too_large"
    # A body under the limit still works.
    ok = requests.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
        headers=auth,
        timeout=10,
    )
    assert ok.status_code == 200


def test_stream_without_usage_is_charged_for_all_it_produced(
    live_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    """The client reads two chunks and leaves; the upstream (which never reports usage) is drained
    for its 40 chunks, and the charge counts all of them, not the two the client saw."""
    email = "nousage@example.com"
    key = live_server.create_key(email=email, usd=1.0)
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks: list[Any] = [
        {**base, "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
        for i in range(40)
    ]
    chunks += [{**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, b"[DONE]"]
    openai_upstream.script(Scripted(chunks=chunks, chunk_delay=0.02))
    raw = b'{"model": "echo", "stream": true, "messages": [{"role": "user", "content": "x"}]}'
    r = requests.post(
        f"{live_server.url}/v1/chat/completions",
        data=raw,
        headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
        stream=True,
        timeout=10,
    )
    lines = (line for line in r.iter_lines() if line)
    next(lines), next(lines)
    r.close()
    wait_for(lambda: account_state(live_server, email)["holds"] == 0, timeout=30)
    prompt = prompt_tokens_upper_bound(parse_chat_request(raw))
    expected = prompt * 2 + 41 * 4  # $1/$2 per Mtok = 2/4 credits per token
    assert account_state(live_server, email)["charged"] == expected


CAPS_CONFIG = (
    MOCK_CONFIG
    + """
  - id: mock/plain
    info: {{name: Plain, developer: Lab, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    capabilities: [streaming]
    routes:
      - {{provider: mock, model: plain-model}}
"""
)


def test_capabilities_are_enforced_at_admission_for_every_door(
    make_live_server: Any, openai_upstream: FakeOpenAI
) -> None:
    server: LiveServer = make_live_server(CAPS_CONFIG.format(base_url=openai_upstream.base_url))
    key = server.create_key()
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    chat = requests.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "mock/plain", "messages": [{"role": "user", "content": "x"}], "tools": [tool]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert chat.status_code == 400 and chat.json()["error"]["code"] == "unsupported_capability"
    assert "tool calling" in chat.json()["message"]
    msg = requests.post(
        f"{server.url}/v1/messages",
        json={
            "model": "mock/plain",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"},  # forced: offered tools are left out instead (below)
        },
        headers={"x-api-key": key},
        timeout=10,
    )
    assert msg.status_code == 400 and msg.json()["error"]["type"] == "invalid_request_error"
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    vision = requests.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "mock/plain", "messages": [{"role": "user", "content": [image]}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert vision.status_code == 400 and "image input" in vision.json()["message"]
    assert openai_upstream.requests == []  # refused before any upstream call
    # ...and each refusal is in the key's logs, with its door.
    logs = requests.get(
        f"{server.url}/v2/logs?period=24h", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    doors = sorted(item["door"] for item in logs.json()["data"])
    assert doors == ["chat", "chat", "messages"]
    assert all(item["status"] == "failed" for item in logs.json()["data"])
    # Tools offered (not forced) on the Messages door to a model without tool calling: left out and
    # named, and the model answers in text (Claude Code offers tools to every model).
    offered = requests.post(
        f"{server.url}/v1/messages",
        json={
            "model": "mock/plain",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        },
        headers={"x-api-key": key},
        timeout=10,
    )
    assert offered.status_code == 200 and offered.headers["x-modelgate-dropped"] == "tools[f]"
    assert "tools" not in openai_upstream.last
