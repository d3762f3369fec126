"""The doors side by side: the same mock, the same metered core, one door each.

- chat door -> OpenAI-compatible mock (the reference figure)
- Messages door -> the same OpenAI-compatible mock (translated both ways)
- Messages door -> an Anthropic-protocol mock (native pass-through: body and answer untouched
  apart from the model name). Pass-through must cost no more than the chat door.
- Responses door -> the OpenAI-compatible mock (translated) and an OpenAI provider declaring
  ``responses: true`` on the same mock (pass-through), both with ``store: false``; and translated with
  ``store: true`` (the default: one more database transaction per request, to keep the response).

Each figure is requests/s at ``conns`` connections and latency p50/p99 at 1 connection, measured
back to back in the same run; ``ratio`` is the door's req/s over the chat door's.
"""

from __future__ import annotations

import json
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
"""

PROMPT = "Say hello in one short sentence."


def _body(tmp: Path, name: str, payload: dict[str, Any]) -> Path:
    path = tmp / name
    path.write_text(json.dumps(payload))
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
    cases = (
        ("chat", f"{base}/v1/chat/completions", chat),
        ("messages (translated)", f"{base}/v1/messages", translated),
        ("messages (pass-through)", f"{base}/v1/messages", native),
        ("responses (translated)", f"{base}/v1/responses", r_translated),
        ("responses (pass-through)", f"{base}/v1/responses", r_native),
        ("responses (translated, store)", f"{base}/v1/responses", r_stored),
    )
    out: dict[str, Any] = {}
    for name, url, body in cases:
        loadgen(url, conns=4, key=key, body=body, requests=500, warmup=0)
        out[name] = {
            "throughput": loadgen(url, conns=conns, key=key, body=body, duration=duration),
            "latency": loadgen(url, conns=1, key=key, body=body, duration=duration),
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
