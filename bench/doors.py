"""The doors side by side: the same mock, the same metered core, one door each.

- chat door -> OpenAI-compatible mock (the reference figure)
- Messages door -> the same OpenAI-compatible mock (translated both ways)
- Messages door -> an Anthropic-protocol mock (native pass-through: body and answer untouched
  apart from the model name). Pass-through must cost no more than the chat door.
- Responses door -> the OpenAI-compatible mock (translated) and an OpenAI provider declaring
  ``responses: true`` on the same mock (pass-through), both with ``store: false``; and translated with
  ``store: true`` (the default: one more database transaction per request, to keep the response).
- media doors -> the OpenAI-compatible mock's canned answers: ``images/generations`` (one image URL),
  ``audio/speech`` (4 KiB of mp3 bytes, billed per character) and ``audio/transcriptions`` (a 2 s WAV
  uploaded as multipart, its duration read from its header; the upstream's ``verbose_json`` rendered
  as ``json``).

Each figure is requests/s at ``conns`` connections and latency p50/p99 at 1 connection, measured
back to back in the same run; ``ratio`` is the door's req/s over the chat door's.
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Appended to bench/run.py's catalogue: an Anthropic provider on the same mock (it answers
# ``POST */messages`` with a fixed Anthropic message).
CATALOG_PROVIDERS = """
  benchanthropic:
    type: anthropic
    base_url: http://127.0.0.1:{fast}/v1
    api_key: sk-bench
    max_retries: 0
  benchresponses:
    type: openai
    base_url: http://127.0.0.1:{fast}/v1
    api_key: sk-bench
    max_retries: 0
    options: {{responses: true}}
"""
CATALOG_MODELS = """
  - id: bench/claude
    info: {{name: Bench Anthropic mock, developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchanthropic, model: mock-claude}}]
  - id: bench/gpt
    info: {{name: Bench Responses mock, developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchresponses, model: mock-model}}]
  - id: bench/image
    type: image
    info: {{name: Bench image mock, developer: bench}}
    pricing: {{per_unit_usd: {{"image:1024x1024/standard": 0.04}}}}
    routes: [{{provider: benchmock, model: mock-image}}]
  - id: bench/tts
    type: speech
    info: {{name: Bench speech mock, developer: bench}}
    pricing: {{per_mchar_usd: 15}}
    routes: [{{provider: benchmock, model: mock-tts}}]
  - id: bench/whisper
    type: transcription
    info: {{name: Bench transcription mock, developer: bench}}
    pricing: {{per_unit_usd: {{second: 0.0001}}}}
    routes: [{{provider: benchmock, model: mock-whisper}}]
"""
BOUNDARY = "benchboundary7MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"

PROMPT = "Say hello in one short sentence."


def _body(tmp: Path, name: str, payload: dict[str, Any]) -> Path:
    path = tmp / name
    path.write_text(json.dumps(payload))
    return path


def _wav(seconds: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(seconds * rate))  # non-zero: the body ends in no whitespace
    return buf.getvalue()


def _multipart(tmp: Path, name: str, fields: dict[str, str], audio: bytes) -> Path:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="audio.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n".encode()
        + audio
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    path = tmp / name
    path.write_bytes(b"".join(parts))
    return path


def overhead(
    loadgen: Callable[..., dict[str, float]], *, base: str, key: str, tmp: Path, duration: float, conns: int
) -> dict[str, Any]:
    chat = _body(
        tmp,
        "door-chat.json",
        {"model": "bench/mock", "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]},
    )
    msg = {"max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]}
    translated = _body(tmp, "door-msg-translated.json", {"model": "bench/mock", **msg})
    native = _body(tmp, "door-msg-native.json", {"model": "bench/claude", **msg})
    resp = {"input": PROMPT, "max_output_tokens": 64}
    r_translated = _body(tmp, "door-resp-translated.json", {"model": "bench/mock", "store": False, **resp})
    r_native = _body(tmp, "door-resp-native.json", {"model": "bench/gpt", "store": False, **resp})
    r_stored = _body(tmp, "door-resp-stored.json", {"model": "bench/mock", **resp})
    image = _body(tmp, "door-image.json", {"model": "bench/image", "prompt": "A lighthouse at dusk"})
    speech = _body(tmp, "door-speech.json", {"model": "bench/tts", "input": PROMPT, "voice": "alloy"})
    upload = _multipart(tmp, "door-transcription.form", {"model": "bench/whisper"}, _wav(2.0))
    json_type = "application/json"
    cases = (
        ("chat", f"{base}/v1/chat/completions", chat, json_type),
        ("messages (translated)", f"{base}/v1/messages", translated, json_type),
        ("messages (pass-through)", f"{base}/v1/messages", native, json_type),
        ("responses (translated)", f"{base}/v1/responses", r_translated, json_type),
        ("responses (pass-through)", f"{base}/v1/responses", r_native, json_type),
        ("responses (translated, store)", f"{base}/v1/responses", r_stored, json_type),
        ("images/generations", f"{base}/v1/images/generations", image, json_type),
        ("audio/speech", f"{base}/v1/audio/speech", speech, json_type),
        ("audio/transcriptions (2 s WAV)", f"{base}/v1/audio/transcriptions", upload, MULTIPART),
    )
    out: dict[str, Any] = {}
    for name, url, body, ctype in cases:
        kw: dict[str, Any] = {"key": key, "body": body, "content_type": ctype}
        loadgen(url, conns=4, requests=500, warmup=0, **kw)
        out[name] = {
            "throughput": loadgen(url, conns=conns, duration=duration, **kw),
            "latency": loadgen(url, conns=1, duration=duration, **kw),
        }
    ref = out["chat"]["throughput"]["rps"] or 1.0
    for name in out:
        out[name]["ratio"] = round(out[name]["throughput"]["rps"] / ref, 3)
    return out


def rows(doors: dict[str, Any] | None, fmt: Callable[..., str]) -> str:
    if not doors:
        return ""
    out = (
        "\nDoors on the same metered core (mock upstreams, same run; ratio = req/s over the chat door's):\n\n"
        "| door | requests/s | ratio | latency p50 / p99 at 1 connection (ms) | errors |\n"
        "|---|---|---|---|---|\n"
    )
    for name, r in doors.items():
        t, lat = r["throughput"], r["latency"]
        out += (
            f"| {name} | {fmt(t['rps'], 0)} | {fmt(r['ratio'], 2)} | {fmt(lat['p50_ms'], 3)} / "
            f"{fmt(lat['p99_ms'], 3)} | {fmt(t.get('errors', 0), 0)} |\n"
        )
    return out
