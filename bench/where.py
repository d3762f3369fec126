"""Where a non-streamed chat request's CPU goes, through uvicorn, in µs per request: the gateway served
as ``bench/ab.sh`` serves it (one worker, SQLite, auth + hold + settle + log) under wrk at ``-c``
connections, sampled by py-spy (a sampling profiler: no per-call overhead, unlike cProfile, so its
shares are the real ones), each sample charged to the innermost part of the request it falls in, and
the shares multiplied by the gateway's CPU time per request over the same seconds (``/proc``).

    pip install py-spy     # once (a binary wheel from PyPI; not a test dependency)
    .venv/bin/python bench/where.py [-d 12] [-c 32] [--src DIR] [--raw out.txt]

Prints a Markdown table (part, share, µs per request) and the CPU per request it was scaled by. Judge
it on a quiet machine: on a loaded one CPU time itself inflates.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import procs  # bench/procs.py (this directory is on sys.path)
from server_counts import prepare

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

# (part, function names as py-spy prints them); a sample goes to the innermost frame that matches.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    (
        "uvicorn: HTTP parsing, the ASGI cycle, response head and socket writes",
        (
            "RequestResponseCycle.",
            "HttpToolsProtocol.",
            "GuardedHttpToolsProtocol.",
            "CorkedTransport.",
            "ProxyHeadersMiddleware.",
            "FlowControl.",
        ),
    ),
    (
        "SQLite: holds, settles, log rows and COMMIT (the group-commit writer on the loop)",
        (
            "SQLiteWriter._run_batch",
            "SQLiteWriter._commit",
            "SQLiteWriter._begin",
            ".op (ledger_sqlite",
            "checkpoint (sqlite_wal",
            "_take_hold",
            "sqlite_timestamp",
        ),
    ),
    (
        "upstream call: request body, HTTP write and read, JSON parse, boundary checks",
        (
            "HTTPClient.",
            "Connection.",
            "HTTPUpstream.",
            "Response.",
            "OpenAICompatProvider.",
            "_normalize_choice",
            "_usage (openai_compat",
            "checked_completion",
            "ChatInvocation.",
        ),
    ),
    (
        "log row, metrics and /models/metrics sketches",
        (
            "RequestRecorder.record",
            "ModelMetrics.",
            "Metrics.request_done",
            "SQLiteLogSink.",
            "db_text",
            "_bounded",
        ),
    ),
    (
        "settle: cost from the price sheet, the settle queued",
        (
            "SettleSteps.",
            "SQLiteLedger.settle",
            "Flight.cost",
            "Flight.charge",
            "Flight.learned",
            "PriceSheet.",
            "price",
        ),
    ),
    (
        "admission: catalogue, capabilities, rate limit, hold estimate, ledger.hold",
        (
            "admit (admission",
            "MeteredCore._admit",
            "SQLiteLedger.hold",
            "RequestRecorder.check_rate_limit",
            "HoldPolicy.",
            "Catalog.",
        ),
    ),
    ("authentication: key lookup", ("KeyAuthenticator.", "key_digest")),
    (
        "parse and validate the request, prompt estimate",
        (
            "ChatDoor.parse",
            "parse_chat_request",
            "validate_body",
            "metered_chat",
            "prompt_tokens_upper_bound",
            "chat_needs",
            "check_chat_media",
            "BaseModel.model_validate_json",
        ),
    ),
    ("render the answer and its headers", ("completion_body", "answer_headers", "meta (credits")),
    (
        "edge and door glue: request id, headers, routing between the layers",
        ("Edge.", "serve_door", "ChatDoor.run", "MeteredCore.", "Router.", "GatewayApp."),
    ),
]
OTHER = "event loop and the rest (epoll, callbacks, task switches, timers)"
FRAME = re.compile(r"^(?P<fn>.+?) \((?P<file>[^)]*)\)$")


def part_of(frames: list[str]) -> str:
    for frame in reversed(frames):  # innermost first
        for part, names in PARTS:
            if any(name in frame for name in names):
                return part
    return OTHER


def shares(raw: Path) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, n = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        # a frame reads "function (path:line)": keep "function (file" for matching
        names = []
        for f in frames:
            m = FRAME.match(f)
            names.append(f"{m['fn']} ({Path(m['file'].split(':')[0]).stem}" if m else f)
        leaf = names[-1] if names else ""
        if leaf.startswith(("select (", "poll (")) or "epoll" in leaf:
            continue  # idle
        counts[part_of(names)] += int(n)
        total += int(n)
    return counts, total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-d", "--seconds", type=float, default=12.0)
    ap.add_argument("-c", "--conns", type=int, default=32)
    ap.add_argument("--src", help="serve this checkout's src (its directory first on PYTHONPATH)")
    ap.add_argument("--raw", help="keep py-spy's raw samples here")
    args = ap.parse_args()
    pyspy = os.environ.get("PYSPY") or shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    wrk = shutil.which("wrk")
    if not Path(pyspy).exists() or wrk is None:
        raise SystemExit("needs py-spy (pip install py-spy, or PYSPY=path) and wrk (apt-get install wrk)")
    work, mock_port, port, key, env = prepare("where", src=args.src, stream=False)
    serve = [sys.executable, "-m", "modelgate.cli", "serve", "--port", str(port), "--workers", "1"]
    raw = Path(args.raw) if args.raw else work / "samples.txt"
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    wrk_env = {**os.environ, "BENCH_BODY": str(work / "body.json"), "BENCH_KEY": key}
    with ExitStack() as stack:
        mock = [sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(mock_port)]
        stack.enter_context(procs.process(mock, port=mock_port, logfile=work / "mock.log"))
        server = stack.enter_context(
            procs.process(serve, port=port, logfile=work / "serve.log", env=env, inherit_env=False)
        )
        warm = [wrk, "-t1", f"-c{args.conns}", "-d3s", "-s", str(BENCH / "post.lua"), url]
        subprocess.run(warm, env=wrk_env, capture_output=True, check=True)
        cmd = [
            wrk,
            "-t1",
            f"-c{args.conns}",
            f"-d{args.seconds + 2:.0f}s",
            "-s",
            str(BENCH / "post.lua"),
            url,
        ]
        load = subprocess.Popen(cmd, env=wrk_env, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        cpu0 = procs.tree_cpu(server.pid)
        before = _requests(port)
        spy = [pyspy, "record", "-p", str(server.pid), "-d", f"{args.seconds:.0f}", "-r", "250", "-f", "raw"]
        subprocess.run([*spy, "-o", str(raw), "--nonblocking"], capture_output=True, check=True)
        cpu1 = procs.tree_cpu(server.pid)
        after = _requests(port)
        load.wait()
    served = after - before
    cpu_us = (cpu1 - cpu0) / max(served, 1) * 1e6
    counts, total = shares(raw)
    print(
        f"gateway CPU per request over the sampled seconds: {cpu_us:.0f} µs "
        f"({served} requests, {total} samples)"
    )
    print()
    print("| part | share | µs per request |")
    print("|---|---|---|")
    for part, n in counts.most_common():
        print(f"| {part} | {n / total:.0%} | {n / total * cpu_us:.0f} |")
    return 0


def _requests(port: int) -> int:
    """Requests served so far, from the gateway's Prometheus counter (all statuses)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("modelgate_http_requests_total{")
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
