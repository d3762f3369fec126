"""Deterministic counts per request of the whole server (uvicorn included), for comparing builds on a
busy machine: **instructions** (valgrind's callgrind, user space only) or **system calls** (strace -c,
by name) of ``modelgate serve`` while a fixed number of requests is sent to it.

``bench/instructions.sh`` counts the app in-process without uvicorn; this one serves through uvicorn
over loopback as ``bench/ab.sh`` does (one worker, SQLite, auth + hold + settle + log), so what the HTTP
server costs (its header checks, one ``write`` per ``send``) shows here and not there. The mock upstream
and the load generator (``bench/loadgen.py``) run outside the counted process.

    .venv/bin/python bench/server_counts.py [--tool callgrind|strace] [-n 2000] [-c 32]
        [--stream --chunks 64] [--src DIR]

Prints JSON: requests, and ``instructions_per_request`` (callgrind) or ``syscalls_per_request`` by
name (strace). Under callgrind instrumentation is switched on only around the counted requests (after
a warm-up of ``--warmup`` requests). ``--src`` serves another checkout's ``src`` (A/B by hand).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import procs  # bench/procs.py (this directory is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CATALOG = """
providers:
  benchmock: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench, max_retries: 0}}
models:
  - id: bench/mock
    info: {{name: Bench mock, developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock, model: mock-model}}]
"""


def loadgen(port: int, key: str, body: Path, n: int, conns: int) -> dict[str, object]:
    cmd = [sys.executable, str(BENCH / "loadgen.py"), f"http://127.0.0.1:{port}/v1/chat/completions"]
    cmd += ["--body", str(body), "--key", key, "-c", str(conns), "-n", str(n), "--warmup", "0", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def strace_counts(path: Path) -> dict[str, int]:
    """``strace -c`` summary: calls per system call name."""
    counts: dict[str, int] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if m and m.group(2) != "total":
            counts[m.group(2)] = int(m.group(1))
    return counts


def prepare(name: str, *, src: str | None, stream: bool) -> tuple[Path, int, int, str, dict[str, str]]:
    """A work folder with the catalogue (the mock on a free port), a fresh SQLite database with a funded
    key, ``body.json`` (chat, streamed or not) and the server's environment (``src`` first on its path):
    (folder, mock port, gateway port, key, environment)."""
    work = Path(tempfile.mkdtemp(prefix=f"modelgate-{name}-"))
    mock_port, port = procs.free_port(), procs.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())
    (work / "catalog.yaml").write_text(CATALOG.format(port=mock_port))
    db = f"sqlite:///{work}/modelgate.db"
    key = procs.create_key(db, f"{name}@example.com", env=env)
    body = json.loads((BENCH / "body.json").read_text())
    body.update(model="bench/mock", stream=stream)
    (work / "body.json").write_text(json.dumps(body))
    env.update(
        MODELGATE_CONFIG=str(work / "catalog.yaml"),
        MODELGATE_DATABASE_URL=db,
        MODELGATE_BOOTSTRAP="false",
        MODELGATE_LOG_LEVEL="warning",
    )
    return work, mock_port, port, key, env


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", choices=["callgrind", "strace"], default="callgrind")
    ap.add_argument("-n", "--requests", type=int, default=2000)
    ap.add_argument("-c", "--conns", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--src", help="serve this checkout's src (its directory first on PYTHONPATH)")
    args = ap.parse_args()
    work, mock_port, port, key, env = prepare("counts", src=args.src, stream=args.stream)
    serve = [sys.executable, "-m", "modelgate.cli", "serve", "--port", str(port), "--workers", "1"]
    out = work / "tool.out"
    if args.tool == "callgrind":
        wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    else:  # attached after the warm-up (below)
        wrap = []
    mock = [sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(mock_port)]
    with ExitStack() as stack:
        stack.enter_context(
            procs.process([*mock, "--chunks", str(args.chunks)], port=mock_port, logfile=work / "mock.log")
        )
        base = stack.enter_context(
            procs.process(wrap + serve, port=port, logfile=work / "serve.log", env=env, inherit_env=False)
        )
        loadgen(port, key, work / "body.json", args.warmup, args.conns)
        tracer = None
        if args.tool == "callgrind":
            subprocess.run(["callgrind_control", "-i", "on", str(base.pid)], check=True, capture_output=True)
        else:  # every thread of the server (the SQLite checkpointer's included)
            tids = [a for t in sorted(Path(f"/proc/{base.pid}/task").iterdir()) for a in ("-p", t.name)]
            tracer = subprocess.Popen(["strace", "-c", "-o", str(out), *tids], stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached
        res = loadgen(port, key, work / "body.json", args.requests, args.conns)
        if args.tool == "callgrind":
            subprocess.run(["callgrind_control", "-i", "off", str(base.pid)], check=True, capture_output=True)
        elif tracer is not None:
            time.sleep(0.5)  # the last settles commit
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
        time.sleep(0.5)
    result: dict[str, object] = {"requests": args.requests, "conns": args.conns, "stream": args.stream}
    if args.stream:
        result["chunks"] = args.chunks
    if res.get("errors"):
        result["errors"] = res["errors"]
    if args.tool == "callgrind":
        files = list(work.glob("tool.out*"))
        total = 0
        for f in files:
            for line in f.read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    total = max(total, int(line.split()[1]))
        result["instructions_per_request"] = round(total / args.requests)
    else:
        counts = strace_counts(out)
        n = args.requests
        result["syscalls_per_request"] = {
            k: round(v / n, 2) for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if v / n >= 0.05
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
