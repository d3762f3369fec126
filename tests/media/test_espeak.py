"""The embedded synthesiser (``type: espeak``: eSpeak NG from the Debian package ``espeak-ng``) on
``POST /v1/audio/speech`` through the official openai SDK: real speech in a WAV file whose header is
right, billed per character. Skipped where ``espeak-ng`` is not installed."""

from __future__ import annotations

import io
import shutil
import time
import wave
from array import array
from typing import Any

import openai
import pytest

from tests.billing.helpers import account_state, wait_for
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

ESPEAK = """
  - id: local/espeak
    type: speech
    info: {name: eSpeak NG (embedded), developer: eSpeak NG}
    pricing: {per_mchar_usd: 1}
    speech: {formats: [wav], max_input_chars: 4096}
    routes:
      - {provider: espeak, model: en-us, options: {voices: {alloy: en-us, nova: en-gb}}}
"""
TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture
def espeak_server(make_live_server: Any, openai_upstream: FakeOpenAI) -> LiveServer:
    config = MOCK_CONFIG.format(base_url=openai_upstream.base_url)
    providers, models = config.split("models:\n", 1)
    providers += "  espeak:\n    type: espeak\n"
    server: LiveServer = make_live_server(providers + "models:\n" + models + ESPEAK.lstrip("\n"))
    return server


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_embedded_speech_is_real_audio(espeak_server: LiveServer) -> None:
    email = "espeak@example.com"
    client = openai.OpenAI(
        base_url=f"{espeak_server.url}/v1", api_key=espeak_server.create_key(email=email), max_retries=0
    )
    before = account_state(espeak_server, email)["balance"]
    started = time.perf_counter()
    with client.audio.speech.with_streaming_response.create(
        model="local/espeak", voice="alloy", input=TEXT, response_format="wav"
    ) as resp:
        assert resp.headers["content-type"] == "audio/wav"
        assert resp.headers["x-aimlapi-credits-used"] == str(2 * len(TEXT))  # 1 USD per M chars
        audio = b"".join(resp.iter_bytes())
    elapsed = time.perf_counter() - started
    with wave.open(io.BytesIO(audio)) as w:
        frames = w.readframes(w.getnframes())
        seconds = w.getnframes() / w.getframerate()
        assert w.getsampwidth() == 2 and len(frames) == w.getnframes() * 2  # the header's sizes are right
    samples = array("h", frames)
    assert 1.5 < seconds < 6  # nine words at 175 words per minute
    assert max(abs(s) for s in samples) > 3000  # speech, not silence
    print(f"espeak: {seconds:.2f} s of audio in {elapsed:.3f} s (real-time factor {elapsed / seconds:.3f})")
    wait_for(lambda: account_state(espeak_server, email)["balance"] == before - 2 * len(TEXT))
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.audio.speech.create(model="local/espeak", voice="alloy", input="x", response_format="mp3")
