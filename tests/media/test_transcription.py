"""``POST /v1/audio/transcriptions`` and ``/translations`` on the metered core, against the
OpenAI-compatible fake: the official openai SDK in every response format, clear 400s for bad
uploads, the ``model:audio`` scope, and billing per second exact at a balance (a WAV file's duration
from its header, another file's from the upstream's verbose answer; never the client's word)."""

from __future__ import annotations

import io
import warnings
import wave
from typing import Any

import openai
import pytest
import requests

from tests.billing.helpers import account_state, assert_books_balance, holds_total, wait_for
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted, form_fields

PER_SECOND = 200  # fake/whisper: 0.0001 USD per second


def wav(seconds: float, rate: int = 16_000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 3990  # 4,000 bytes: held as 2 seconds at 16 kbit/s


def post(
    server: LiveServer, key: str, file: tuple[str, bytes] | None, path: str = "transcriptions", **fields: Any
) -> requests.Response:
    fields.setdefault("model", "fake/whisper")
    files = {"file": (file[0], file[1], "application/octet-stream")} if file else None
    return requests.post(
        f"{server.url}/v1/audio/{path}",
        data=fields,
        files=files,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def sent(upstream: FakeOpenAI) -> list[dict[str, Any]]:
    return [
        form_fields(r.headers["Content-Type"], r.body) for r in upstream.requests if "/audio/trans" in r.path
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openai_sdk_every_format(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    client = openai.OpenAI(
        base_url=f"{media_server.url}/v1", api_key=media_server.create_key(), max_retries=0
    )
    audio = wav(2.5)
    heard = f"heard a.wav {len(audio)} bytes"
    res = client.audio.transcriptions.create(model="fake/whisper", file=("a.wav", audio), language="en")
    assert res.text == heard
    up = sent(openai_upstream)[-1]
    assert up["model"] == "whisper-1" and up["response_format"] == "verbose_json" and up["language"] == "en"
    assert up["file"] == ("a.wav", audio)
    text = client.audio.transcriptions.create(
        model="fake/whisper", file=("a.wav", audio), response_format="text"
    )
    assert text == heard + "\n"
    srt = client.audio.transcriptions.create(
        model="fake/whisper", file=("a.wav", audio), response_format="srt"
    )
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,250\nheard\n")
    assert "2\n00:00:01,250 --> 00:00:02,500\n" in srt
    vtt = client.audio.transcriptions.create(
        model="fake/whisper", file=("a.wav", audio), response_format="vtt"
    )
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\n")
    verbose = client.audio.transcriptions.create(
        model="fake/whisper",
        file=("a.wav", audio),
        response_format="verbose_json",
        timestamp_granularities=["segment"],
    )
    assert verbose.duration == 2.5 and verbose.text == heard and len(verbose.segments or []) == 2
    assert sent(openai_upstream)[-1]["timestamp_granularities[]"] == "segment"
    raw = client.audio.transcriptions.with_raw_response.create(model="fake/whisper", file=("a.wav", audio))
    assert raw.headers["x-aimlapi-credits-used"] == str(3 * PER_SECOND)  # 2.5 s, rounded up
    with warnings.catch_warnings():  # the SDK marks translations deprecated; OpenAI still serves it
        warnings.simplefilter("ignore", DeprecationWarning)
        tr = client.audio.translations.create(model="fake/whisper", file=("b.mp3", MP3))
    assert tr.text == f"translated b.mp3 {len(MP3)} bytes"
    assert openai_upstream.requests[-1].path.endswith("/audio/translations")


def test_bad_uploads_are_clear_400s(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = media_server.create_key()
    audio = wav(1)
    no_fmt = b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00"
    cases: list[tuple[tuple[str, bytes] | None, dict[str, Any], str]] = [
        (None, {}, "file"),
        (("a.wav", b""), {}, "file"),
        (("a.txt", b"hello, not audio"), {}, "file"),
        (("a.wav", no_fmt), {}, "file"),
        (("big.wav", wav(13)), {}, "file"),  # 416,044 bytes: over the model's 400,000
        (("a.wav", audio), {"response_format": "xml"}, "response_format"),
        (("a.wav", audio), {"temperature": "3"}, "temperature"),
        (("a.wav", audio), {"temperature": "warm"}, "temperature"),
        (("a.wav", audio), {"language": "english!"}, "language"),
        (("a.wav", audio), {"timestamp_granularities[]": "word"}, "timestamp_granularities"),
        (("a.wav", audio), {"model": ""}, "model"),
    ]
    for file, fields, param in cases:
        r = post(media_server, key, file, **fields)
        assert r.status_code == 400, (fields, r.text)
        err = r.json()["error"]
        assert param in (err.get("param") or err["message"]), (fields, err)
    not_multipart = requests.post(
        f"{media_server.url}/v1/audio/transcriptions",
        json={"model": "fake/whisper"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert (
        not_multipart.status_code == 400 and "multipart/form-data" in not_multipart.json()["error"]["message"]
    )
    assert sent(openai_upstream) == []
    chat_only = media_server.create_key(email="chat-only@example.com", scopes=["model:chat"])
    denied = post(media_server, chat_only, ("a.wav", audio))
    assert denied.status_code == 403 and "model:audio" in denied.json()["error"]["message"]
    assert post(media_server, key, ("a.wav", audio), model="echo").status_code == 404
    assert sent(openai_upstream) == []


def test_billing_is_exact_at_a_balance(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    email = "audio-books@example.com"
    key = media_server.create_key(email=email, usd=0.001)  # 2,000 credits: 10 seconds
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    assert post(media_server, key, ("a.wav", wav(1))).status_code >= 500  # nothing charged
    # A WAV file: its header's 2.5 s, rounded up; the client's own "duration" is ignored (named).
    r = post(media_server, key, ("a.wav", wav(2.5)), duration="0.1")
    assert r.status_code == 200 and r.headers["x-aimlapi-credits-used"] == str(3 * PER_SECOND)
    assert r.headers["x-modelgate-dropped"] == "duration"
    # Another container: held at its size (2 s at 16 kbit/s), charged the upstream's duration.
    openai_upstream.script(Scripted(body={"text": "hi", "duration": 1.2, "segments": []}))
    r = post(media_server, key, ("b.mp3", MP3))
    assert r.status_code == 200 and r.json()["usage"] == {"type": "duration", "seconds": 2}
    openai_upstream.script(Scripted(body={"text": "no text field"[:0], "duration": "long"}))
    assert post(media_server, key, ("b.mp3", MP3)).status_code == 502  # nothing charged
    wait_for(lambda: account_state(media_server, email)["holds"] == 0)  # settled in the background
    assert post(media_server, key, ("c.wav", wav(5))).status_code == 200  # 1,000 credits: 0 left
    wait_for(lambda: account_state(media_server, email)["balance"] == 0)
    broke = post(media_server, key, ("d.wav", wav(0.5)))
    assert broke.status_code == 403 and broke.json()["error"]["code"] == "insufficient_credits"
    wait_for(lambda: holds_total(media_server) == 0)
    assert_books_balance(media_server, email, key, initial_credits=2_000, requests_made=6)
