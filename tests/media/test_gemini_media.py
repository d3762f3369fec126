"""Google's media through the Gemini API, against the Gemini fake: Imagen (``:predict``) behind
``POST /v1/images/generations`` (the SDK's ``images.generate``, sampleCount, the nearest aspect ratio,
URLs refused, billing per image), Gemini's native image output (``:generateContent`` with
``responseModalities`` IMAGE: ``images.generate`` and ``images.edit``), Gemini speech generation
behind ``POST /v1/audio/speech`` (``audio.speech.create``: PCM as wav or pcm, the voice mapped,
billing per character) and Gemini transcription (audio in as ``inlineData``: the SDK's
``audio.transcriptions.create``, billed by the header's or Gemini's audio token count)."""

from __future__ import annotations

import base64
import io
import warnings
import wave
from typing import Any

import openai
import orjson
import pytest

from tests.billing.helpers import account_state, wait_for
from tests.conftest import GEMINI_KEY, MOCK_CONFIG, LiveServer
from tests.fakes import Reply
from tests.fakes.gemini_server import GeminiFake, fake_gemini_pcm
from tests.fakes.openai_server import FakeOpenAI, fake_image
from tests.media.test_edits import PNG
from tests.media.test_transcription import wav

IMAGEN = """
  - id: google/imagen-fake
    type: image
    info: {{name: Imagen (fake), developer: Google}}
    pricing: {{per_unit_usd: {{"image:1024x1024/standard": 0.04, "image:1408x768/standard": 0.04}}}}
    routes:
      - {{provider: gemfake, model: imagen-4.0-generate-001}}
  - id: google/tts-fake
    type: speech
    info: {{name: Gemini speech (fake), developer: Google}}
    pricing: {{per_mchar_usd: 15}}
    speech: {{formats: [wav, pcm]}}
    routes:
      - {{provider: gemfake, model: gemini-2.5-flash-preview-tts, options: {{voices: {{alloy: Kore}}}}}}
  - id: google/flash-image-fake
    type: image
    info: {{name: Gemini image output (fake), developer: Google}}
    pricing: {{per_unit_usd: {{"image:1024x1024/standard": 0.039, "image:1344x768/standard": 0.039}}}}
    images: {{edits: true, max_n: 4}}
    routes:
      - {{provider: gemfake, model: gemini-2.5-flash-image}}
  - id: google/listen-fake
    type: transcription
    info: {{name: Gemini transcription (fake), developer: Google}}
    pricing: {{per_unit_usd: {{second: 0.0001}}}}
    routes:
      - {{provider: gemfake, model: gemini-2.5-flash}}
"""


@pytest.fixture
def imagen_server(make_live_server: Any, openai_upstream: FakeOpenAI, gemini_up: GeminiFake) -> LiveServer:
    providers, models = MOCK_CONFIG.format(base_url=openai_upstream.base_url).split("models:\n", 1)
    providers += (
        f"  gemfake:\n    type: gemini\n    base_url: {gemini_up.base_url}\n    api_key: {GEMINI_KEY}\n"
    )
    server: LiveServer = make_live_server(providers + "models:\n" + models + IMAGEN.format().lstrip("\n"))
    return server


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openai_sdk_on_imagen(imagen_server: LiveServer, gemini_up: GeminiFake) -> None:
    client = openai.OpenAI(
        base_url=f"{imagen_server.url}/v1", api_key=imagen_server.create_key(), max_retries=0
    )
    raw = client.images.with_raw_response.generate(model="google/imagen-fake", prompt="a red fox", n=2)
    assert raw.headers["x-aimlapi-credits-used"] == str(2 * 80_000)
    res = raw.parse()
    assert [base64.b64decode(d.b64_json or "") for d in res.data] == [
        fake_image("a red fox", i) for i in range(2)
    ]
    assert res.output_format == "png"
    sent = [r for r in gemini_up.requests if r.path.endswith(":predict")]
    assert sent[-1].path == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert orjson.loads(sent[-1].body) == {
        "instances": [{"prompt": "a red fox"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "1:1"},
    }
    client.images.generate(model="google/imagen-fake", prompt="wide", size="1408x768")  # type: ignore[arg-type]
    assert orjson.loads(gemini_up.requests[-1].body)["parameters"]["aspectRatio"] == "16:9"
    with pytest.raises(openai.BadRequestError, match="b64_json"):
        client.images.generate(model="google/imagen-fake", prompt="x", response_format="url")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openai_sdk_on_gemini_speech(imagen_server: LiveServer, gemini_up: GeminiFake) -> None:
    client = openai.OpenAI(
        base_url=f"{imagen_server.url}/v1", api_key=imagen_server.create_key(), max_retries=0
    )
    pcm = fake_gemini_pcm("Say it warmly: Hello there", "Kore")
    with client.audio.speech.with_streaming_response.create(
        model="google/tts-fake",
        voice="alloy",
        input="Hello there",
        response_format="wav",
        instructions="Say it warmly",
    ) as resp:
        assert resp.headers["x-aimlapi-credits-used"] == str(30 * len("Hello there"))
        audio = b"".join(resp.iter_bytes())
    with wave.open(io.BytesIO(audio)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24_000, 1, 2)
        assert w.readframes(w.getnframes()) == pcm
    body = orjson.loads(gemini_up.requests[-1].body)
    assert gemini_up.requests[-1].path == "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent"
    assert body["generationConfig"]["responseModalities"] == ["AUDIO"]
    raw = client.audio.speech.create(model="google/tts-fake", voice="Puck", input="Hi", response_format="pcm")
    assert raw.content == fake_gemini_pcm("Hi", "Puck")
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.audio.speech.create(model="google/tts-fake", voice="Puck", input="Hi")  # mp3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openai_sdk_on_gemini_native_images(imagen_server: LiveServer, gemini_up: GeminiFake) -> None:
    client = openai.OpenAI(
        base_url=f"{imagen_server.url}/v1", api_key=imagen_server.create_key(), max_retries=0
    )
    raw = client.images.with_raw_response.generate(
        model="google/flash-image-fake",
        prompt="a banana",
        n=2,
        size="1344x768",  # type: ignore[arg-type]
    )
    assert raw.headers["x-aimlapi-credits-used"] == str(2 * 78_000)
    res = raw.parse()
    prompt = "a banana at 16:9"
    assert [base64.b64decode(d.b64_json or "") for d in res.data] == [fake_image(prompt, 0)] * 2
    assert [d.revised_prompt for d in res.data] == [f"Here is {prompt}"] * 2
    sent = [r for r in gemini_up.requests if r.path.endswith("gemini-2.5-flash-image:generateContent")]
    assert len(sent) == 2  # one call per image
    assert orjson.loads(sent[-1].body) == {
        "contents": [{"role": "user", "parts": [{"text": "a banana"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "16:9"}},
    }
    edited = client.images.edit(model="google/flash-image-fake", image=("in.png", PNG), prompt="add a moon")
    assert base64.b64decode(edited.data[0].b64_json or "") == fake_image(
        f"add a moon editing {len(PNG)} bytes at 1:1", 0
    )
    parts = orjson.loads(gemini_up.requests[-1].body)["contents"][0]["parts"]
    assert parts[0]["inlineData"] == {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}
    with pytest.raises(openai.BadRequestError, match="mask"):
        client.images.edit(
            model="google/flash-image-fake", image=("in.png", PNG), mask=("m.png", PNG), prompt="x"
        )
    blocked = Reply(body={"candidates": [{"content": {"parts": [{"text": "I cannot draw that"}]}}]})
    gemini_up.add(*[blocked] * 5)  # no image part, however often the gateway retries
    try:
        with pytest.raises(openai.APIStatusError) as err:
            client.images.generate(model="google/flash-image-fake", prompt="blocked")
    finally:
        gemini_up.clear()
    assert err.value.status_code == 502


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openai_sdk_on_gemini_transcription(imagen_server: LiveServer, gemini_up: GeminiFake) -> None:
    email = "listen@example.com"
    client = openai.OpenAI(
        base_url=f"{imagen_server.url}/v1", api_key=imagen_server.create_key(email=email), max_retries=0
    )
    audio = wav(2.5)
    before = account_state(imagen_server, email)["balance"]
    text = client.audio.transcriptions.create(
        model="google/listen-fake", file=("a.wav", audio), language="en"
    )
    assert text.text == f"heard audio/wav {len(audio)} bytes"
    wait_for(
        lambda: account_state(imagen_server, email)["balance"] == before - 3 * 200
    )  # 3 s from the header
    body = orjson.loads(gemini_up.requests[-1].body)
    assert gemini_up.requests[-1].path == "/v1beta/models/gemini-2.5-flash:generateContent"
    instruction, inline = body["contents"][0]["parts"]
    assert instruction["text"].startswith("Generate a transcript") and "code en" in instruction["text"]
    assert inline["inlineData"] == {"mimeType": "audio/wav", "data": base64.b64encode(audio).decode()}
    mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 3990  # held 2 s; Gemini counts 7.25 s of audio
    verbose = client.audio.transcriptions.create(
        model="google/listen-fake", file=("a.mp3", mp3), response_format="verbose_json"
    )
    assert verbose.duration == 7.25 and verbose.text == "heard audio/mp3 4000 bytes"
    assert verbose.usage is not None and verbose.usage.seconds == 8  # type: ignore[union-attr]
    srt = client.audio.transcriptions.create(
        model="google/listen-fake", file=("a.mp3", mp3), response_format="srt"
    )
    assert str(srt) == "1\n00:00:00,000 --> 00:00:07,250\nheard audio/mp3 4000 bytes\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks translations deprecated
        translated = client.audio.translations.create(model="google/listen-fake", file=("a.wav", audio))
    assert translated.text == f"translated audio/wav {len(audio)} bytes"
    with pytest.raises(openai.BadRequestError, match="Gemini takes"):
        client.audio.transcriptions.create(
            model="google/listen-fake", file=("a.webm", b"\x1a\x45\xdf\xa3" + b"\x00" * 64)
        )
