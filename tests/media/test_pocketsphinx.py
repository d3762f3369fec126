"""The embedded speech recogniser (``local/pocketsphinx-en-us``: CMU PocketSphinx 5 and the
US-English model inside its PyPI wheel, in the local provider's supervised worker) through the
official openai SDK: real words from real recordings, every response format, its word error rate on
the samples shipped in ``tests/media/data`` (two public-domain LibriVox recordings, two made by
eSpeak NG; ``data/README.md`` says where each comes from), a WAV made by the embedded synthesiser
heard back, clear 400s, and the charge per second."""

from __future__ import annotations

import io
import json
import math
import shutil
import struct
import warnings
import wave
from pathlib import Path

import openai
import pytest

from modelgate.errors import InvalidRequestError
from modelgate.providers.local.recognizer import RATE, pcm16k
from tests.billing.helpers import account_state, wait_for
from tests.conftest import LiveServer

DATA = Path(__file__).parent / "data"
MODEL = "local/pocketsphinx-en-us"
PER_SECOND = 20  # 0.00001 USD per second of audio (the built-in catalogue's nominal price)
SAMPLES: dict[str, str] = json.loads((DATA / "transcripts.json").read_text())["samples"]

pytest.importorskip("pocketsphinx", reason="the 'local' extra (pocketsphinx) is not installed")


def word_errors(reference: str, hypothesis: str) -> int:
    """Substitutions + deletions + insertions (word-level Levenshtein distance)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wav_file(samples: list[int], *, rate: int, channels: int = 1, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        fmt = {1: "B", 2: "h", 4: "i"}[width]
        w.writeframes(struct.pack(f"<{len(samples)}{fmt}", *samples))
    return buf.getvalue()


def test_wav_decoding_mixes_and_resamples() -> None:
    # 0.5 s of stereo 44.1 kHz: left a 1 kHz tone, right its negation plus an offset -> mono offset
    n = 22_050
    tone = [round(8000 * math.sin(2 * math.pi * 1000 * i / 44_100)) for i in range(n)]
    stereo = [v for t in tone for v in (t + 4000, -t + 4000)]
    pcm, seconds = pcm16k(wav_file(stereo, rate=44_100, channels=2))
    assert seconds == pytest.approx(0.5)
    assert len(pcm) == RATE // 2
    assert abs(int(pcm[RATE // 4]) - 4000) < 40  # the channels averaged, the level kept
    pcm8, _ = pcm16k(wav_file([128, 255, 0, 128] * 4000, rate=8000, width=1))  # 8-bit unsigned, upsampled
    assert len(pcm8) == 32_000 and int(abs(pcm8).max()) > 30_000
    for bad in (
        b"ID3\x04" + b"\x00" * 100,
        b"RIFF\x00\x00\x00\x00WAVEjunk",
        wav_file([0] * 10, rate=16_000)[:36],
    ):
        with pytest.raises(InvalidRequestError, match="file"):
            pcm16k(bad)
    floats = wav_file([0] * 8, rate=16_000)  # a format tag the recogniser does not read (ADPCM: 2)
    with pytest.raises(InvalidRequestError, match="unsupported WAV encoding"):
        pcm16k(floats[:20] + struct.pack("<H", 2) + floats[22:])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_embedded_recogniser_through_the_openai_sdk(live_server: LiveServer) -> None:
    email = "sphinx@example.com"
    client = openai.OpenAI(
        base_url=f"{live_server.url}/v1", api_key=live_server.create_key(email=email), max_retries=0
    )
    errors = words = 0
    heard: dict[str, str] = {}
    for name, reference in SAMPLES.items():
        text = client.audio.transcriptions.create(model=MODEL, file=(name, (DATA / name).read_bytes())).text
        heard[name] = text
        errors += word_errors(reference, text)
        words += len(reference.split())
    print("pocketsphinx heard:", json.dumps(heard, indent=1), f"WER {errors / words:.2f}")
    librivox = {n: t for n, t in heard.items() if n.startswith("librivox")}
    assert "amiable himself" in librivox["librivox-amiable.wav"]
    assert librivox["librivox-ill-disposed.wav"].startswith("he was not")
    lv_errors = sum(word_errors(SAMPLES[n], t) for n, t in librivox.items())
    assert lv_errors / sum(len(SAMPLES[n].split()) for n in librivox) <= 0.4  # measured: 0.25
    assert errors / words <= 0.45  # measured: 0.28 (0.29 on the two eSpeak NG samples)

    before = account_state(live_server, email)["balance"]
    data = (DATA / "librivox-amiable.wav").read_bytes()  # 3.29 s: charged 4 seconds
    verbose = client.audio.transcriptions.create(
        model=MODEL,
        file=("amiable.wav", data),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.duration == pytest.approx(3.29, abs=0.01)
    assert verbose.language == "english" and verbose.text == heard["librivox-amiable.wav"]
    assert [w.word for w in verbose.words or []] == verbose.text.split()
    stamps = [(w.start, w.end) for w in verbose.words or []]
    assert all(a < b for a, b in stamps) and stamps == sorted(stamps) and stamps[-1][1] <= 3.29
    assert verbose.segments and verbose.segments[0].text == verbose.text
    wait_for(lambda: account_state(live_server, email)["balance"] == before - 4 * PER_SECOND)

    srt = client.audio.transcriptions.create(model=MODEL, file=("a.wav", data), response_format="srt")
    first = verbose.segments[0]
    assert str(srt).startswith(f"1\n00:00:0{int(first.start)},")
    assert str(srt).strip().endswith(verbose.text)
    vtt = client.audio.transcriptions.create(model=MODEL, file=("a.wav", data), response_format="vtt")
    assert str(vtt).startswith("WEBVTT\n\n00:00:0") and verbose.text in str(vtt)
    text = client.audio.transcriptions.create(model=MODEL, file=("a.wav", data), response_format="text")
    assert str(text).strip() == verbose.text

    with pytest.raises(openai.BadRequestError, match="WAV"):
        client.audio.transcriptions.create(model=MODEL, file=("a.mp3", b"ID3\x04" + b"\x00" * 4000))
    with pytest.raises(openai.BadRequestError, match="English"):
        client.audio.transcriptions.create(model=MODEL, file=("a.wav", data), language="de")
    with warnings.catch_warnings(), pytest.raises(openai.BadRequestError, match="translate"):
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks translations deprecated
        client.audio.translations.create(model=MODEL, file=("a.wav", data))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_embedded_models_hear_each_other(live_server: LiveServer) -> None:
    """eSpeak NG speaks (``audio.speech.create`` with_streaming_response), PocketSphinx hears it."""
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=live_server.create_key(), max_retries=0)
    said = "the weather today is sunny with a light wind from the west"
    with client.audio.speech.with_streaming_response.create(
        model="local/espeak-ng", voice="nova", input=said, response_format="wav"
    ) as resp:
        assert resp.headers["content-type"] == "audio/wav"
        audio = b"".join(resp.iter_bytes())
    heard = client.audio.transcriptions.create(model=MODEL, file=("said.wav", audio)).text
    print("said:", said, "| heard:", heard)
    assert word_errors(said, heard) <= len(said.split()) // 2
    assert "weather" in heard and "west" in heard
