"""No 500s from input (issue 10): every value below once answered 500; now the client's mistakes are
400s and the upstream's are 502s, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests

from tests.billing.helpers import auth, chat, error, get
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.web.conftest import CSRF_META
from tests.web.helpers import logged_in, make_account

NOCAP = """
  - id: mock/nocap
    info: {{name: No cap, developer: Lab}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: mock, model: nocap-model}}
"""
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server(make_live_server: Any, openai_upstream: FakeOpenAI) -> LiveServer:
    built: LiveServer = make_live_server((MOCK_CONFIG + NOCAP).format(base_url=openai_upstream.base_url))
    return built


def _post(server: LiveServer, key: str, body: Any) -> requests.Response:
    return requests.post(f"{server.url}/v1/chat/completions", headers=auth(key), json=body, timeout=20)


def test_integers_beyond_64_bits_in_the_chat_body(server):
    key = server.create_key(email="big@example.com", usd=1.0)
    body = error(_post(server, key, {"model": "echo", "messages": HI, "seed": 2**64}), 400)
    assert "64 bits" in body["message"] and body["error"]["param"] == "seed"
    error(_post(server, key, {"model": "echo", "messages": HI, "seed": 2**63}), 400)  # int64 bound
    tool = {"type": "function", "function": {"name": "f", "parameters": {"maximum": 2**70}}}
    body = error(_post(server, key, {"model": "echo", "messages": HI, "tools": [tool]}), 400)
    assert body["error"]["param"] == "tools[0].function.parameters.maximum"
    error(_post(server, key, {"model": "echo", "messages": HI, "temperature": -(2**64)}), 400)
    assert chat(server, key, "12345678901234567890123 is only text").status_code == 200


def test_huge_max_tokens_on_a_model_without_output_max(server):
    key = server.create_key(email="cap@example.com", usd=1.0)
    for field in ("max_tokens", "max_completion_tokens"):
        body = error(_post(server, key, {"model": "mock/nocap", "messages": HI, field: 2**62}), 400)
        assert body["error"]["param"] == field
    # The largest cap accepted costs more than this balance: refused as such, not a 500.
    r = _post(server, key, {"model": "mock/nocap", "messages": HI, "max_tokens": 2**31 - 1})
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_credits"


def test_query_integers_and_dates_out_of_range(server):
    key = server.create_key(email="range@example.com", usd=1.0)
    for offset in ("9223372036854775808", "99999999999999999999999", "1_0", "١٢"):
        error(get(server, "/v2/logs", key, period="1h", offset=offset), 400)
    assert get(server, "/v2/logs", key, period="1h", offset=str(2**31 - 1)).json()["data"] == []
    far = [
        ("0001-01-01T00:00:00+05:00", "0001-01-02T00:00:00+05:00"),
        ("9999-12-30T00:00:00-05:00", "9999-12-31T23:00:00-05:00"),
        ("0001-01-01T00:00:00", "0001-01-01T01:00:00"),
    ]
    for start, end in far:
        for params in ({}, {"group_by": "day", "tz": "Pacific/Kiritimati"}):
            error(get(server, "/v2/usage/detail", key, start=start, end=end, **params), 400)
        error(get(server, "/v2/usage", key, start=start, end=end), 400)
        error(get(server, "/v2/logs", key, start=start, end=end), 400)
        error(get(server, "/v2/billing/transactions", key, **{"from": start, "to": end}), 400)


def test_nul_bytes_in_names_filters_and_paths(server):
    key = server.create_key(email="nul@example.com", usd=1.0)
    mkey = server.create_key(email="nul@example.com", usd=0, management=True)
    r = requests.post(f"{server.url}/v1/keys", headers=auth(mkey), json={"name": "a\u0000b"}, timeout=60)
    assert error(r, 400)["error"]["param"] == "name"
    listed = requests.get(f"{server.url}/v1/keys", headers=auth(mkey), timeout=60).json()
    prefix = (listed["data"] if isinstance(listed, dict) else listed)[0]["prefix"]
    r = requests.patch(
        f"{server.url}/v1/keys/{prefix}", headers=auth(mkey), json={"name": "x\u0000"}, timeout=10
    )
    error(r, 400)
    r = requests.patch(f"{server.url}/v1/keys/ab%00cd", headers=auth(mkey), json={"name": "x"}, timeout=60)
    error(r, 400)
    for name in ("model", "client_request_id", "inference_id", "key_prefix"):
        error(get(server, "/v2/logs", key, period="1h", **{name: "a\x00b"}), 400)
    error(get(server, "/v2/usage", key, period="1h", key_prefix="\x00"), 400)
    error(get(server, "/v2/billing/transactions", key, cursor="\x00"), 400)
    assert get(server, "/v2/logs", key, period="1h").status_code == 200


def test_nul_bytes_in_sign_up_and_log_in_emails(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for path in ("/app/signup", "/app/login"):
            page = c.get(path)
            token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            data = {"email": "a\x00b@example.com", "password": "correct horse", "csrf_token": token}
            r = c.post(path, data=data)
            assert r.status_code in (400, 401), (path, r.status_code)


def test_form_encoded_post_to_the_playground(server):
    make_account(server, "form@example.com", usd=1.0)
    with logged_in(server, "form@example.com") as c:
        token = CSRF_META.search(c.get("/app/playground").text).group(1)  # type: ignore[union-attr]
        r = c.post("/app/playground/chat", data={"model": "echo", "csrf_token": token})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        r = c.post("/app/playground/chat", data={"model": "echo"}, headers={"X-CSRF-Token": token})
        assert r.status_code == 400


def test_upstream_stream_whose_first_event_is_not_utf8(server, openai_upstream):
    key = server.create_key(email="utf8@example.com", usd=1.0)
    openai_upstream.script(Scripted(chunks=[b'\xff\xfe{"choices": []}']))
    r = _post(server, key, {"model": "echo", "messages": HI, "stream": True})
    body = error(r, 502)
    assert body["error"]["code"] == "upstream_protocol_error" and "UTF-8" in body["message"]
    assert chat(server, key).status_code == 200


def test_non_numeric_usage_from_the_upstream(server, openai_upstream):
    """Also in test_poison_rows (every bad usage, both databases, JSON and stream)."""
    key = server.create_key(email="abc@example.com", usd=1.0)
    openai_upstream.script(Scripted(usage={"prompt_tokens": "abc", "completion_tokens": 1}))  # type: ignore[dict-item]
    body = error(_post(server, key, {"model": "echo", "messages": HI}), 502)
    assert body["error"]["code"] == "upstream_protocol_error" and "prompt_tokens" in body["message"]
