"""No single bad value can poison the books (issue 10): every scenario that once broke the log
writer, on SQLite and on PostgreSQL, followed by a normal request that must be charged, logged and
readable at once, with every reporting endpoint answering."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest
import requests

from tests.billing.helpers import (
    CREDITS_PER_USD,
    assert_books_balance,
    auth,
    chat,
    check,
    get,
)
from tests.fakes.openai_server import Scripted

USD = 1.0


def _usage(**kw: Any) -> dict[str, Any]:
    return {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14, **kw}


# name -> (what the upstream does, the status the client gets)
SCENARIOS: dict[str, tuple[Scripted, int]] = {
    # A 400 whose message holds a NUL byte (PostgreSQL: "invalid byte sequence for encoding UTF8").
    "nul_in_error_message": (
        Scripted(status=400, body={"error": {"message": 'invalid "$ref": "http://x\u0000"'}}),
        400,
    ),
    # A 502 whose body is gzip bytes (binary text in the message, NULs included).
    "gzip_502_body": (
        Scripted(
            status=502,
            body=gzip.compress(
                orjson.dumps({"error": {"message": "Incorrect API key provided: sk-proj-abc"}})
            ),
        ),
        502,
    ),
    # finish_reason longer than the 32-character column.
    "long_finish_reason": (Scripted(finish_reason="x" * 100), 200),
    # finish_reason that is not even text (SQLite: "Error binding parameter").
    "finish_reason_object": (Scripted(finish_reason={"a": 1}), 200),  # type: ignore[arg-type]
    # Token counts beyond the int32 column (PostgreSQL) and beyond 64 bits (SQLite).
    "completion_tokens_1e10": (Scripted(usage=_usage(completion_tokens=10**10)), 502),
    "completion_tokens_1e20": (Scripted(usage=_usage(completion_tokens=10**20)), 502),
    # Negative or non-numeric usage is an invalid answer, never a free request.
    "negative_tokens": (Scripted(usage=_usage(completion_tokens=-5)), 502),
    "prompt_tokens_abc": (Scripted(usage=_usage(prompt_tokens="abc")), 502),  # type: ignore[dict-item]
}


def _reports_answer(server: Any, key: str, mkey: str) -> None:
    """Every reporting endpoint answers (none may depend on a write having succeeded)."""
    for path, params in (
        ("/v2/billing", {}),
        ("/v2/usage", {"period": "1h"}),
        ("/v2/logs", {"period": "1h"}),
        ("/v1/key", {}),
    ):
        r = get(server, path, key, **params)
        assert r.status_code == 200, (path, r.text)
    r = get(server, "/v1/keys", mkey)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_one_bad_value_does_not_poison_the_books(live_server, openai_upstream, name, stream):
    email = f"poison-{name}@example.com"
    key = live_server.create_key(email=email, usd=USD)
    mkey = live_server.create_key(email=email, usd=0, management=True)
    plan, status = SCENARIOS[name]
    openai_upstream.script(plan)
    bad = _chat(live_server, key, stream=stream)
    if stream and plan.status == 200 and status != 200:
        # The answer started (200) and the invalid usage came at its end: an error frame closes it.
        assert bad.status_code == 200
        assert b'"statusCode":502' in bad.content
    else:
        assert bad.status_code == status, bad.text
    if bad.status_code >= 400:
        body = bad.json()
        assert body["statusCode"] == bad.status_code
        assert "\x00" not in body["message"] and "\ufffd" not in body["message"]
        assert "sk-proj" not in body["message"]
    elif status == 200:
        finish = (
            [c["choices"][0]["finish_reason"] for c in _events(bad) if c.get("choices")]
            if stream
            else [bad.json()["choices"][0]["finish_reason"]]
        )
        assert "stop" in finish and set(finish) <= {None, "stop"}

    good = chat(live_server, key, "after the bad one")
    assert good.status_code == 200, good.text
    assert int(good.headers["x-aimlapi-credits-used"]) > 0
    # Readable at once: the reporting endpoints wait for this instance's pending writes.
    logs = check(get(live_server, "/v2/logs", key, period="1h"), "logs-v2.json", "/v2/logs")["data"]
    assert [r["inference_id"] for r in logs] == [
        good.headers["x-inference-id"],
        bad.headers["x-inference-id"],
    ]
    assert logs[0]["cost"]["credits"] == int(good.headers["x-aimlapi-credits-used"])
    _reports_answer(live_server, key, mkey)
    assert_books_balance(live_server, email, key, initial_credits=int(USD * CREDITS_PER_USD), requests_made=2)


def _events(resp: requests.Response) -> list[dict[str, Any]]:
    out = []
    for line in resp.content.split(b"\n"):
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            out.append(orjson.loads(line[6:]))
    return out


def _chat(server: Any, key: str, *, stream: bool) -> requests.Response:
    body: dict[str, Any] = {"model": "echo", "messages": [{"role": "user", "content": "one two three"}]}
    if stream:
        body["stream"] = True
    return requests.post(f"{server.url}/v1/chat/completions", headers=auth(key), json=body, timeout=20)


def test_a_row_the_database_refuses_is_set_aside_and_nothing_else_is_lost(live_server, openai_upstream):
    """The poison-row test: a log row the database cannot store (a value beyond 64 bits and a NUL,
    slipped past every boundary check) lands in the same write batch as other requests' rows and
    charges. Those requests are charged, logged and readable at once; the bad row is set aside and
    counted in /metrics; nothing is retried forever."""
    email = "poison-row@example.com"
    key = live_server.create_key(email=email, usd=USD)
    sink = live_server.app.state.mg.core.logsink
    original = sink.record
    injected: list[str] = []

    def record(row: dict[str, Any]) -> None:
        if not injected:  # runs on the server's loop, within the request that is being recorded
            injected.append(row["inference_id"])
            original(
                {
                    **row,
                    "inference_id": "poison-" + row["inference_id"][:10],
                    "completion_tokens": 10**20,
                    "finish_reason": "x" * 100,
                    "error_message": "nul \x00 byte",
                }
            )
        original(row)

    sink.record = record
    try:
        responses = [chat(live_server, key, f"request {i}") for i in range(5)]
    finally:
        sink.record = original
    assert injected and all(r.status_code == 200 for r in responses)
    logs = check(get(live_server, "/v2/logs", key, period="1h"), "logs-v2.json", "/v2/logs")["data"]
    assert sorted(r["inference_id"] for r in logs) == sorted(r.headers["x-inference-id"] for r in responses)
    charged = sum(int(r.headers["x-aimlapi-credits-used"]) for r in responses)
    assert sum(r["cost"]["credits"] for r in logs) == charged > 0
    billing = get(live_server, "/v2/billing", key)
    assert billing.status_code == 200
    assert_books_balance(live_server, email, key, initial_credits=int(USD * CREDITS_PER_USD), requests_made=5)
    metrics = requests.get(f"{live_server.url}/metrics", timeout=60).text
    assert "modelgate_log_rows_set_aside_total 1" in metrics
