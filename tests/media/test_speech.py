"""``POST /v1/audio/speech`` on the metered core, against the OpenAI-compatible fake: the official
openai SDK's ``audio.speech.create`` and ``with_streaming_response``, clear 400s, the ``model:speech``
scope, and billing per character exact at a balance."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
import requests

from tests.billing.helpers import account_state, assert_books_balance, holds_total, wait_for
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted, fake_speech_pieces

PER_CHAR = 30  # fake/tts: 15 USD per million characters = 30 credits per character


def post(server: LiveServer, key: str, **body: Any) -> requests.Response:
    body.setdefault("model", "fake/tts")
    body.setdefault("input", "Hello there")
    body.setdefault("voice", "alloy")
    return requests.post(
        f"{server.url}/v1/audio/speech", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def sent(upstream: FakeOpenAI) -> list[dict[str, Any]]:
    return [orjson.loads(r.body) for r in upstream.requests if r.path.endswith("/audio/speech")]


def audio(body: dict[str, Any]) -> bytes:
    return b"".join(fake_speech_pieces(body))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openai_sdk_speech(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    client = openai.OpenAI(
        base_url=f"{media_server.url}/v1", api_key=media_server.create_key(), max_retries=0
    )
    res = client.audio.speech.create(model="fake/tts", input="Good morning", voice="alloy")
    want = {"model": "tts-1", "input": "Good morning", "voice": "alloy", "response_format": "mp3"}
    assert res.content == audio(want) and sent(openai_upstream)[-1] == want
    with client.audio.speech.with_streaming_response.create(
        model="fake/tts", input="Streamed", voice="nova", response_format="wav", speed=1.5
    ) as streamed:
        assert streamed.headers["content-type"] == "audio/wav"
        assert streamed.headers["x-aimlapi-credits-used"] == str(PER_CHAR * len("Streamed"))
        got = b"".join(streamed.iter_bytes())
    up = sent(openai_upstream)[-1]
    assert up["speed"] == 1.5 and got == audio(up)
    with pytest.raises(openai.BadRequestError, match="voice"):
        client.audio.speech.create(model="fake/tts", input="x", voice="nobody")  # type: ignore[arg-type]


def test_bad_requests_are_clear_400s(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = media_server.create_key()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input": ""}, "input"),
        ({"input": "x" * 101}, "input"),
        ({"voice": "nobody"}, "voice"),
        ({"voice": 3}, "voice"),
        ({"response_format": "ogg"}, "response_format"),
        ({"response_format": "pcm"}, "response_format"),  # not one the model makes
        ({"speed": 9}, "speed"),
        ({"stream_format": "sse"}, "stream_format"),
    ]
    for extra, param in cases:
        r = post(media_server, key, **extra)
        assert r.status_code == 400, (extra, r.text)
        err = r.json()["error"]
        assert param in (err.get("param") or err["message"]), (extra, err)
    assert sent(openai_upstream) == []
    chat_only = media_server.create_key(email="chat-only@example.com", scopes=["model:chat"])
    denied = post(media_server, chat_only)
    assert denied.status_code == 403 and "model:speech" in denied.json()["error"]["message"]
    assert post(media_server, key, model="echo").status_code == 404


def test_billing_is_exact_at_a_balance(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    email = "speech-books@example.com"
    key = media_server.create_key(email=email, usd=0.0015)  # 3,000 credits: 100 characters
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    assert post(media_server, key).status_code >= 500  # nothing charged
    wait_for(lambda: account_state(media_server, email)["holds"] == 0)  # released in the background
    ok = post(media_server, key, input="a" * 60)
    assert ok.status_code == 200 and ok.headers["x-aimlapi-credits-used"] == str(60 * PER_CHAR)
    wait_for(lambda: account_state(media_server, email)["balance"] == 40 * PER_CHAR)
    broke = post(media_server, key, input="b" * 41)  # one character more than is left
    assert broke.status_code == 403 and broke.json()["error"]["code"] == "insufficient_credits"
    assert post(media_server, key, input="c" * 40).status_code == 200
    wait_for(lambda: holds_total(media_server) == 0)
    assert_books_balance(media_server, email, key, initial_credits=3_000, requests_made=4)
    assert account_state(media_server, email)["balance"] == 0
