"""The official openai JS SDK (npm ``openai``, Node >= 20; installed once by ``node_openai`` into
``tests/embeddings/js``) against the media doors: ``images.generate``, ``images.edit``,
``audio.speech.create``, ``audio.transcriptions.create`` (json and srt), through
``tests/embeddings/js/media.mjs``; and against the embedded models (eSpeak NG speaks, PocketSphinx
hears) through ``tests/embeddings/js/embedded_media.mjs``."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.embeddings.conftest import JS_DIR, node_openai  # noqa: F401  (the fixture)
from tests.fakes.openai_server import fake_image, fake_speech_pieces
from tests.media.test_edits import PNG
from tests.media.test_pocketsphinx import DATA, word_errors
from tests.media.test_transcription import wav


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_js_sdk_on_media_doors(media_server: LiveServer, node_openai: Path) -> None:  # noqa: F811
    audio = wav(2.5)
    env = {
        **os.environ,
        "MG_BASE_URL": f"{media_server.url}/v1",
        "MG_KEY": media_server.create_key(),
        "MG_PNG": base64.b64encode(PNG).decode(),
        "MG_WAV": base64.b64encode(audio).decode(),
    }
    done = subprocess.run(
        [str(node_openai), str(JS_DIR / "media.mjs")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert [base64.b64decode(i) for i in out["images"]] == [fake_image("a red fox", i) for i in range(2)]
    assert out["size"] == "1024x1024"
    assert [base64.b64decode(i) for i in out["edit"]] == [fake_image("edit in.png 64 bytes: add a moon", 0)]
    body = {"voice": "alloy", "response_format": "mp3", "input": "Good morning"}
    assert out["speechType"] == "audio/mpeg"
    assert base64.b64decode(out["speech"]) == b"".join(fake_speech_pieces(body))
    assert out["transcript"] == f"heard a.wav {len(audio)} bytes"
    assert out["srt"].startswith("1\n00:00:00,000 --> 00:00:01,250\nheard\n")
    assert out["badSize"] == ["BadRequestError", 400]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_js_sdk_on_the_embedded_models(live_server: LiveServer, node_openai: Path) -> None:  # noqa: F811
    """eSpeak NG speaks and PocketSphinx hears, through the official JS SDK (the built-in catalogue)."""
    pytest.importorskip("pocketsphinx", reason="the 'local' extra (pocketsphinx) is not installed")
    said = "the weather today is sunny with a light wind from the west"
    env = {
        **os.environ,
        "MG_BASE_URL": f"{live_server.url}/v1",
        "MG_KEY": live_server.create_key(),
        "MG_SAY": said,
        "MG_RECORDED": str(DATA / "librivox-amiable.wav"),
    }
    done = subprocess.run(
        [str(node_openai), str(JS_DIR / "embedded_media.mjs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["speechType"] == "audio/wav" and out["speechBytes"] > 50_000  # seconds of 22 kHz speech
    assert out["credits"] == str(len(said))  # 0.5 USD per million characters: 1 credit per character
    assert word_errors(said, out["heard"]) <= len(said.split()) // 2 and "weather" in out["heard"]
    assert out["recorded"].startswith("he might even have been made") and "amiable himself" in out["recorded"]
    assert out["duration"] == pytest.approx(3.29, abs=0.01) and out["words"] == len(out["recorded"].split())
