"""The per-model docs pages of media models show that type's code samples (not a chat sample), and
their Python samples, as the page shows them (only the key filled in), run against a live gateway on
the OpenAI-compatible fake."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from modelgate.doors import default_doors
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.media.test_transcription import wav

SAMPLE = re.compile(r'<code id="sample-(python|javascript)">(.*?)</code>', re.S)
PATHS = {
    "fake/image": "/v1/images/generations",
    "fake/tts": "/v1/audio/speech",
    "fake/whisper": "/v1/audio/transcriptions",
}


def samples(server: LiveServer, model: str) -> dict[str, str]:
    page = requests.get(f"{server.url}/docs/models/{model}", timeout=30)
    assert page.status_code == 200
    return {lang: html.unescape(code) for lang, code in SAMPLE.findall(page.text)}


def run_sample(source: str, key: str, cwd: Path) -> str:
    script = cwd / "sample.py"
    script.write_text(source.replace("<YOUR_MODELGATE_KEY>", key))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_media_docs_pages_show_their_own_samples(media_server: LiveServer) -> None:
    for model, path in PATHS.items():
        got = samples(media_server, model)
        assert set(got) == {"python", "javascript"}
        for source in got.values():
            assert f"{media_server.url}{path}" in source and model in source
            assert "/v1/chat/completions" not in source and "messages" not in source
        spec = requests.get(f"{media_server.url}/docs-json", params={"model": model}, timeout=30).json()
        op = next(iter(next(iter(spec["paths"].values())).values()))
        langs = {s["lang"]: s["source"] for s in op["x-codeSamples"]}
        assert f"{media_server.url}{path}" in langs["cURL"]
    assert (
        "--output speech.mp3"
        in requests.get(f"{media_server.url}/docs-json", params={"model": "fake/tts"}, timeout=30).text
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_media_request_schemas_are_the_models_own(media_server: LiveServer) -> None:
    """/docs-json's request schema of a media model is its door's (not chat's), bounded by the model."""

    def body(model: str) -> tuple[str, dict[str, Any]]:
        spec = requests.get(f"{media_server.url}/docs-json", params={"model": model}, timeout=30).json()
        ((path, item),) = spec["paths"].items()
        ((media, content),) = item["post"]["requestBody"]["content"].items()
        assert path == PATHS[model]
        return media, content["schema"]["properties"]

    media, props = body("fake/tts")
    assert media == "application/json" and "messages" not in props
    assert props["voice"]["enum"] == ["alloy", "nova"] and props["response_format"]["enum"] == ["mp3", "wav"]
    assert props["input"]["maxLength"] == 100 and props["model"]["enum"] == ["fake/tts"]
    media, props = body("fake/image")
    assert props["size"]["enum"] == ["1024x1024", "1792x1024"] and props["quality"]["enum"] == [
        "hd",
        "standard",
    ]
    assert props["n"]["maximum"] == 4 and props["prompt"]["maxLength"] == 200
    media, props = body("fake/whisper")
    assert media == "multipart/form-data" and props["file"] == {"type": "string", "format": "binary"}
    page = requests.get(f"{media_server.url}/docs/models/fake/tts", timeout=30).text
    schema = page.split('id="request-schema"', 1)[1].split("</table>", 1)[0]
    assert "voice" in schema and "messages" not in schema


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_media_python_samples_run_as_written(
    media_server: LiveServer, openai_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    key = media_server.create_key()
    out = run_sample(samples(media_server, "fake/image")["python"], key, tmp_path)
    lines = out.splitlines()
    assert lines[0].startswith("http") or lines[0].endswith("base64 characters")
    meta = json.loads("\n".join(lines[1:]))
    assert meta["usage"]["credits_used"] == 80_000  # one standard 1024x1024 image at 0.04 USD
    assert any(r.path.endswith("/images/generations") for r in openai_upstream.requests)

    out = run_sample(samples(media_server, "fake/tts")["python"], key, tmp_path)
    audio = (tmp_path / "speech.mp3").read_bytes()
    assert audio and out.startswith(f"{len(audio)} bytes of audio/mpeg")

    (tmp_path / "audio.wav").write_bytes(wav(3.0))
    data = json.loads(run_sample(samples(media_server, "fake/whisper")["python"], key, tmp_path))
    assert data["text"] and data["usage"] == {"type": "duration", "seconds": 3}


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_media_js_samples_run_as_written(media_server: LiveServer, tmp_path: Path) -> None:
    key = media_server.create_key()
    (tmp_path / "audio.wav").write_bytes(wav(2.0))
    outputs = {}
    for model in PATHS:
        script = tmp_path / "sample.mjs"
        script.write_text(samples(media_server, model)["javascript"].replace("<YOUR_MODELGATE_KEY>", key))
        done = subprocess.run(
            ["node", str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 0 and not done.stderr, done.stderr
        outputs[model] = done.stdout
    assert '"credits_used": 80000' in outputs["fake/image"]
    audio = (tmp_path / "speech.mp3").read_bytes()
    assert audio and outputs["fake/tts"].startswith(f"{len(audio)} bytes of audio/mpeg")
    assert json.loads(outputs["fake/whisper"])["usage"] == {"type": "duration", "seconds": 2}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_api_reference_sums_up_each_door_from_the_door(media_server: LiveServer) -> None:
    page = requests.get(f"{media_server.url}/api-docs", timeout=30)
    assert page.status_code == 200
    text = html.unescape(page.text)
    for door in default_doors():
        assert door.note and door.note in text, door.name
