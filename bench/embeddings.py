"""Embedding figures for ``bench/run.py``: the gateway's overhead on ``POST /v1/embeddings`` against
the mock upstream (one input, 1,536 floats each way), and the local embedding model's embeddings/s
(a ``modelgate`` on the built-in catalogue, batches of ``BENCH_EMBED_BATCH`` texts).

The orchestrator passes its own helpers (``loadgen``, ``process``...) in, so that this module stays
import-free of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

EMBED_DIMS = 1536
BATCH = int(os.environ.get("BENCH_EMBED_BATCH", "32"))
LOCAL_SECONDS = float(os.environ.get("BENCH_EMBED_LOCAL_SECONDS", "10"))

# Appended to the benchmark catalogue's models: served by the same fast mock as bench/mock.
CATALOG_MODELS = f"""
  - id: bench/embed
    type: embedding
    info: {{{{name: Bench embeddings mock, developer: bench}}}}
    pricing: {{{{input_usd_per_mtok: 0.02}}}}
    embedding: {{{{dimensions: {EMBED_DIMS}}}}}
    routes: [{{{{provider: benchmock, model: mock-embed}}}}]
"""

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Embeddings map text to vectors so that similar meanings lie close together.",
    "A gateway meters, routes and logs every request it forwards upstream.",
    "Rain is expected tomorrow afternoon in the northern valleys.",
]


def body(tmp: Path, name: str, model: str, n: int) -> Path:
    path = tmp / name
    path.write_text(json.dumps({"model": model, "input": [TEXTS[i % len(TEXTS)] for i in range(n)]}))
    return path


def overhead(
    loadgen: Callable[..., dict[str, float]],
    *,
    direct: str,
    gateway: str,
    key: str,
    tmp: Path,
    duration: float,
    conns: int,
) -> dict[str, Any]:
    """Requests/s and 1-connection latency, mock direct vs through the gateway (one input each)."""
    one = body(tmp, "embed1.json", "bench/embed", 1)
    loadgen(gateway, conns=4, key=key, body=one, requests=500, warmup=0)
    out: dict[str, Any] = {}
    for name, url, k in (("direct", direct, None), ("gateway", gateway, key)):
        out[name] = {
            "throughput": loadgen(url, conns=conns, key=k, body=one, duration=duration),
            "latency": loadgen(url, conns=1, key=k, body=one, duration=duration),
        }
    d, g = out["direct"]["latency"], out["gateway"]["latency"]
    out["added_p50_ms"] = round(g["p50_ms"] - d["p50_ms"], 3)
    out["added_p99_ms"] = round(g["p99_ms"] - d["p99_ms"], 3)
    return out


def local_model(
    loadgen: Callable[..., dict[str, float]],
    process: Callable[..., Any],
    *,
    py: str,
    tmp: Path,
    port: int,
    key: str,
    db_url: str,
) -> dict[str, Any] | None:
    """embeddings/s of the first ``local/`` embedding model of the built-in catalogue."""
    env = {"MODELGATE_DATABASE_URL": db_url, "MODELGATE_BOOTSTRAP": "false", "MODELGATE_LOG_LEVEL": "warning"}
    cmd = [str(Path(py).parent / "modelgate"), "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with process(cmd, port=port, env=env, logfile=tmp / "modelgate-local-embed.log", timeout=300):
        models = httpx.get(f"{base}/v1/models", params={"type": "embedding"}, timeout=30).json()["data"]
        local = [m["id"] for m in models if m["id"].startswith("local/") and m.get("available")]
        if not local:
            return None
        model = local[0]
        batch = body(tmp, "embed-local.json", model, BATCH)
        headers = {"Authorization": f"Bearer {key}"}
        warm = httpx.post(f"{base}/v1/embeddings", content=batch.read_bytes(), headers=headers, timeout=300)
        warm.raise_for_status()
        res = loadgen(f"{base}/v1/embeddings", conns=2, key=key, body=batch, duration=LOCAL_SECONDS)
        return {
            "model": model,
            "batch": BATCH,
            "requests_per_s": res["rps"],
            "embeddings_per_s": round(res["rps"] * BATCH, 1),
            "p50_ms": res["p50_ms"],
            "errors": res.get("errors", 0),
        }


def rows(emb: dict[str, Any] | None, local: dict[str, Any] | None, fmt: Callable[..., str]) -> str:
    if emb is None:
        return ""
    d, g = emb["direct"], emb["gateway"]
    out = (
        "\nEmbeddings (`POST /v1/embeddings`, one input of 1,536 floats, mock upstream):\n\n"
        "| figure | mock upstream (direct) | modelgate |\n|---|---|---|\n"
        f"| requests/s | {fmt(d['throughput']['rps'], 0)} | {fmt(g['throughput']['rps'], 0)} |\n"
        f"| latency p50 at 1 connection (ms) | {fmt(d['latency']['p50_ms'], 3)} | "
        f"{fmt(g['latency']['p50_ms'], 3)} |\n"
        f"| **added** latency p50 / p99 (ms) | — | {fmt(emb['added_p50_ms'], 3)} / "
        f"{fmt(emb['added_p99_ms'], 3)} |\n"
    )
    if local is not None:
        out += (
            f"\nLocal embedding model `{local['model']}`: {fmt(local['embeddings_per_s'], 1)} embeddings/s "
            f"(batches of {local['batch']}, 2 connections; p50 {fmt(local['p50_ms'], 1)} ms per batch).\n"
        )
    else:
        out += "\nLocal embedding model: none available in the built-in catalogue (not measured).\n"
    return out
