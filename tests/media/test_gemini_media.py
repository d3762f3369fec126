"""Google's media through the Gemini API, against the Gemini fake: Imagen (``:predict``) behind
``POST /v1/images/generations`` (the SDK's ``images.generate``, sampleCount, the nearest aspect ratio,
URLs refused, billing per image) and Gemini speech generation behind ``POST /v1/audio/speech``
(``audio.speech.create``: PCM as wav or pcm, the voice mapped, billing per character)."""

from __future__ import annotations

import base64
import io
import wave
from typing import Any

import openai
import orjson
import pytest

from tests.conftest import GEMINI_KEY, MOCK_CONFIG, LiveServer
from tests.fakes.gemini_server import GeminiFake, fake_gemini_pcm
from tests.fakes.openai_server import FakeOpenAI, fake_image

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
