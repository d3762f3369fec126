"""The load generators of the benchmarks: wrk (with bench/post.lua) when installed, else
bench/loadgen.py; each returns requests/s, request and error counts and latency percentiles."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
WRK = shutil.which("wrk")
DURATION = float(os.environ.get("BENCH_DURATION", "10"))


def wrk(
    url: str, *, conns: int, duration: float, key: str | None, body: Path, latency: bool = False
) -> dict[str, float]:
    assert WRK
    cmd = [WRK, "-t1", f"-c{conns}", f"-d{max(1, int(duration))}s", "-s", str(BENCH / "post.lua"), url]
    if latency:
        cmd.insert(1, "--latency")
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_KEY": key or ""}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
    out = proc.stdout
    res: dict[str, float] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["errors"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
        if m:
            v = float(m.group(1))
            res[f"p{pct}_ms"] = v / 1000 if m.group(2) == "us" else (v * 1000 if m.group(2) == "s" else v)
    return res


def loadgen(
    url: str,
    *,
    conns: int,
    key: str | None,
    body: Path,
    duration: float | None = None,
    requests: int | None = None,
    warmup: float = 1.0,
    content_type: str = "application/json",
) -> dict[str, float]:
    cmd = [
        PY,
        str(BENCH / "loadgen.py"),
        url,
        "--body",
        str(body),
        "-c",
        str(conns),
        "--json",
        "--warmup",
        str(warmup),
    ]
    if key:
        cmd += ["--key", key]
    if content_type != "application/json":
        cmd += ["--content-type", content_type]
    cmd += ["-n", str(requests)] if requests is not None else ["-d", str(duration or DURATION)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]
