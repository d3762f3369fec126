"""Instructions per agent-shaped request of the whole server, deterministic on a busy machine.

``modelgate serve`` (one worker, SQLite, auth + hold + settle + log) runs under valgrind's callgrind
with instrumentation on only around ``-n`` requests sent one after another, each a ~400 KB Messages
body of ``bench/agents.py`` (a conversation's turns in order) streamed back by the mock in
``--chunks`` events at once (no pacing: the count is the same either way, and it is faster). The
mock and the client run outside valgrind. User-space instructions only: the kernel's copies of the
body are not in it.

    .venv/bin/python bench/agents_counts.py [-n 20] [--chunks 60] [--cases pass-through,translation]
                                            [--src DIR]

Prints one line per case: instructions per request. ``--src`` serves another checkout's ``src`` (its
directory first on PYTHONPATH) for a before / after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import procs  # bench/procs.py (this directory is on sys.path)
from agents import BIG, CATALOG, ROOT, _one, agent_bodies, free_port, start, stop

MODELS = {"pass-through": "agents/claude", "translation": "agents/gpt"}


async def sequential(port: int, bodies: list[bytes], key: str, n: int) -> int:
    out: dict[str, list[float]] = {"ttfb_ms": [], "total_ms": [], "errors": []}
    for i in range(n):
        await _one(port, "/v1/messages", bodies[i % len(bodies)], key, out)
    return len(out["errors"])


def count(args: argparse.Namespace, case: str, work: Path, mock_port: int) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
    env["PYTHONPATH"] = args.src
    db = f"sqlite:///{work}/{case}.db"
    key = procs.create_key(db, "counts@example.com", cli=(sys.executable, "-m", "modelgate.cli"), env=env)
    env.update(
        MODELGATE_CONFIG=str(work / "catalog.yaml"),
        MODELGATE_DATABASE_URL=db,
        MODELGATE_BOOTSTRAP="false",
        MODELGATE_LOG_LEVEL="warning",
    )
    out, port = work / f"{case}.callgrind", free_port()
    grind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    serve = [*grind, sys.executable, "-m", "modelgate.cli", "serve", "--port", str(port)]
    gw = start(serve, port, work / f"{case}.log", env, wait=600)
    try:
        bodies = agent_bodies(MODELS[case], kb=400)
        if asyncio.run(sequential(port, bodies, key, 4)):  # warm-up: caches, pools, the writer
            raise RuntimeError(f"{case}: the warm-up failed (see {work / f'{case}.log'})")
        subprocess.run(["callgrind_control", "-i", "on", str(gw.pid)], check=True, capture_output=True)
        errors = asyncio.run(sequential(port, bodies, key, args.requests))
        subprocess.run(["callgrind_control", "-i", "off", str(gw.pid)], check=True, capture_output=True)
        if errors:
            raise RuntimeError(f"{case}: {errors} requests failed")
        time.sleep(1.0)  # the last settles commit
    finally:
        stop(gw)
    totals = [line for line in out.read_text().splitlines() if line.startswith(("summary:", "totals:"))]
    return int(totals[-1].split()[1]) // args.requests


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--requests", type=int, default=20)
    ap.add_argument("--chunks", type=int, default=60)
    ap.add_argument("--cases", default="pass-through,translation")
    ap.add_argument("--src", default=str(ROOT / "src"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelgate-agents-counts-"))
    mock_port = free_port()
    (work / "catalog.yaml").write_text(CATALOG.format(port=mock_port, big=BIG))
    mock_cmd = [sys.executable, str(ROOT / "bench" / "mock_upstream.py"), "--port", str(mock_port)]
    mock = start([*mock_cmd, "--chunks", str(args.chunks)], mock_port, work / "mock.log", dict(os.environ))
    try:
        for case in args.cases.split(","):
            per = count(args, case, work, mock_port)
            print(f"{case}: {per:,} instructions per request ({args.requests} requests; {args.src})")
    finally:
        stop(mock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
