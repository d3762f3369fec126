"""A benchmark shaped like coding agents (Claude Code and the like) on the Messages door.

Requests arrive at a fixed rate (open loop: a slow gateway does not slow the arrivals), each a
Messages body of ~400 KB (a long system prompt, ~40 tools with JSON schemas, and a history that
grows from request to request: text, tool_use and tool_result turns; 1-hour cache_control markers
on the system prompt, the last tool and the last block, as Claude Code sends them), streamed back by a mock
that paces its events (default 60 deltas 100 ms apart: 6 s per stream, ~300 streams in flight at
50 arrivals/s). One gateway worker, SQLite, auth + hold + settle + log on.

Measured per case, in one run: time to first byte (the response head, sent once the first upstream
event is in) p50 / p99 / max, the same load **directly** at the mock, the **added** TTFB, errors,
streams completed, and the gateway's RSS before, at its peak (sampled every 50 ms) and after, and
its CPU per request. Cases:

- ``pass-through``: the Messages door on an Anthropic route (body forwarded, events passed on);
- ``translation``: the Messages door on an OpenAI-compatible route (translated both ways).

    .venv/bin/python bench/agents.py [--rate 50] [--seconds 12] [--chunks 60] [--chunk-ms 100]
                                     [--body-kb 400] [--cases pass-through,translation] [--src DIR]
    .venv/bin/python bench/agents.py --write-bodies DIR   # two ~411 KB bodies for bench/hotpath.py

``--write-bodies`` writes ``DIR/messages-passthrough.json`` and ``DIR/messages-translation.json`` (the
9th body of a conversation, ~411 KB, for ``bench/hotpath.py``'s ``bench/claude`` and ``bench/gpt-big``
models) and exits: ``bench/hotpath.py --path /v1/messages --body DIR/messages-passthrough.json``,
``bash bench/instructions.sh -n 100 -c 8 --path /v1/messages --body ...``.

Bounded: about (seconds + chunks x chunk-ms + a few) x (cases + 1) seconds; ~2 minutes by default.
``--src`` serves another checkout's ``src`` (its directory first on PYTHONPATH) for an A/B by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httptools
import procs  # bench/procs.py (this directory is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIG = 10_000_000  # context length of the bench models: a 400 KB prompt must be admitted

CATALOG = """
providers:
  local: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench}}
  paced-openai: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench, max_retries: 0}}
  paced-anthropic:
    {{type: anthropic, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench, max_retries: 0}}
models:
  - id: agents/claude
    info: {{name: Agents (Anthropic mock), developer: bench, contextLength: {big}, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: paced-anthropic, model: mock-claude}}]
  - id: agents/gpt
    info: {{name: Agents (OpenAI mock), developer: bench, contextLength: {big}, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: paced-openai, model: mock-model}}]
"""

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "or",
    "from",
    "at",
    "which",
    "an",
    "not",
    "have",
    "function",
    "return",
    "value",
    "file",
    "path",
    "error",
    "test",
    "module",
    "import",
    "class",
    "self",
    "async",
    "await",
    "request",
    "response",
    "stream",
    "token",
    "model",
    "gateway",
    "budget",
    "ledger",
    "hold",
    "settle",
    "commit",
    "config",
    "parse",
    "render",
]


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


CACHE_1H = {"type": "ephemeral", "ttl": "1h"}


def agent_bodies(model: str, *, kb: int, variants: int = 16, seed: int = 7) -> list[bytes]:
    """``variants`` Messages bodies, each a turn further into one conversation, around ``kb`` KB."""
    rng = random.Random(seed)
    system = _text(rng, kb * 1024 * 15 // 100)
    tools = [
        {
            "name": f"tool_{i}",
            "description": _text(rng, 600),
            "input_schema": {
                "type": "object",
                "properties": {
                    f"arg_{j}": {"type": "string", "description": _text(rng, 120)} for j in range(6)
                },
                "required": ["arg_0"],
            },
        }
        for i in range(40)
    ]
    fixed = len(system) + len(json.dumps(tools))
    history: list[dict[str, Any]] = []
    target_first = kb * 1024 * 80 // 100  # the history grows to ~120% of kb over the variants
    step = max(1, (kb * 1024 * 40 // 100) // max(variants - 1, 1))
    bodies = []
    turn = 0
    for v in range(variants):
        want = target_first + v * step - fixed
        while sum(len(json.dumps(m)) for m in history) < want:
            turn += 1
            tid = f"toolu_{turn:06d}"
            history.append({"role": "user", "content": [{"type": "text", "text": _text(rng, 1500)}]})
            history.append(
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": _text(rng, 400)},
                        {"type": "tool_use", "id": tid, "name": "tool_1", "input": {"arg_0": _text(rng, 80)}},
                    ],
                }
            )
            history.append(
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": tid, "content": _text(rng, 6000)}],
                }
            )
        # Cache breakpoints where Claude Code puts them: the system prompt, the last tool, the last block.
        last = {"type": "text", "text": f"Next step {v}.", "cache_control": CACHE_1H}
        messages = [*history, {"role": "user", "content": [last]}]
        body = {
            "model": model,
            "max_tokens": 4096,
            "stream": True,
            "system": [{"type": "text", "text": system, "cache_control": CACHE_1H}],
            "tools": [*tools[:-1], {**tools[-1], "cache_control": CACHE_1H}],
            "messages": messages,
        }
        bodies.append(json.dumps(body).encode())
    return bodies


# ---- the open-loop client ------------------------------------------------------------------------


class _Exchange(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[None]) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done = done
        self.t0 = 0.0
        self.first: float | None = None
        self.status = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._end()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        self._end()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _one(port: int, path: str, payload: bytes, key: str, out: dict[str, list[float]]) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"anthropic-version: 2023-06-01\r\nx-api-key: {key}\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    t0 = time.perf_counter()
    try:
        transport, proto = await loop.create_connection(lambda: _Exchange(done), "127.0.0.1", port)
        transport.write(head + payload)
        await asyncio.wait_for(done, 120)
        transport.close()
    except (OSError, TimeoutError):
        out["errors"].append(1)
        return
    if proto.status != 200 or proto.first is None:
        out["errors"].append(1)
        return
    out["ttfb_ms"].append((proto.first - t0) * 1000)
    out["total_ms"].append((time.perf_counter() - t0) * 1000)


async def open_loop(
    port: int, path: str, bodies: list[bytes], key: str, *, rate: float, seconds: float
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"ttfb_ms": [], "total_ms": [], "errors": [], "inflight": []}
    tasks: set[asyncio.Task[None]] = set()
    n = int(rate * seconds)
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(_one(port, path, bodies[i % len(bodies)], key, out))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        out["inflight"].append(len(tasks))
    while tasks:
        await asyncio.gather(*list(tasks))
    return out


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


# ---- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], wait: float = 60.0) -> None:
    for _ in range(int(wait * 10)):
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start(
    cmd: list[str], port: int, log: Path, env: dict[str, str], wait: float = 60.0
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
    )
    wait_port(port, proc, wait)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakRSS:
    """The highest RSS of a process, sampled every 50 ms in a thread while in the ``with`` block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(OSError, ValueError):
                self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(name: str, res: dict[str, list[float]], direct: dict[str, list[float]] | None) -> dict[str, Any]:
    s: dict[str, Any] = {
        "case": name,
        "sent": len(res["ttfb_ms"]) + len(res["errors"]),
        "completed": len(res["ttfb_ms"]),
        "errors": len(res["errors"]),
        "ttfb_p50_ms": pct(res["ttfb_ms"], 50),
        "ttfb_p99_ms": pct(res["ttfb_ms"], 99),
        "ttfb_max_ms": max(res["ttfb_ms"], default=float("nan")),
        "inflight_max": max(res["inflight"], default=0),
        "stream_p50_s": pct(res["total_ms"], 50) / 1000,
    }
    if direct is not None:
        s["added_ttfb_p50_ms"] = s["ttfb_p50_ms"] - pct(direct["ttfb_ms"], 50)
        s["added_ttfb_p99_ms"] = s["ttfb_p99_ms"] - pct(direct["ttfb_ms"], 99)
    return s


def table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    def f(v: Any, nd: int = 1) -> str:
        if isinstance(v, float):
            return "n/a" if v != v else f"{v:,.{nd}f}"
        return "—" if v is None else f"{v:,}" if isinstance(v, int) else str(v)

    out = [
        f"Agent-shaped load: {meta['rate']:g} arrivals/s for {meta['seconds']:g} s, Messages bodies "
        f"{meta['body_kb_min']}-{meta['body_kb_max']} KB, streams of {meta['chunks']} events "
        f"{meta['chunk_ms']:g} ms apart; one worker, SQLite; load average {meta['load_before']} before, "
        f"{meta['load_after']} after; {meta['when']}.",
        "",
        "| case | sent | errors | in flight (max) | TTFB p50 / p99 / max (ms) "
        "| **added** TTFB p50 / p99 (ms) | gateway CPU per request (ms) | RSS before → peak → after (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['case']} | {f(r['sent'])} | {f(r['errors'])} | {f(r['inflight_max'])} | "
            f"{f(r['ttfb_p50_ms'])} / {f(r['ttfb_p99_ms'])} / {f(r['ttfb_max_ms'])} | "
            f"{f(r.get('added_ttfb_p50_ms'))} / {f(r.get('added_ttfb_p99_ms'))} | "
            f"{f(r.get('cpu_ms_per_request'), 2)} | "
            f"{f(r.get('rss_before_mb'))} → {f(r.get('rss_peak_mb'))} → {f(r.get('rss_after_mb'))} |"
        )
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--chunks", type=int, default=60)
    ap.add_argument("--chunk-ms", type=float, default=100.0)
    ap.add_argument("--body-kb", type=int, default=400)
    ap.add_argument("--cases", default="pass-through,translation")
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--write-bodies", metavar="DIR", help="write two bodies for bench/hotpath.py and exit")
    args = ap.parse_args()
    if args.write_bodies:
        out_dir = Path(args.write_bodies)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, model in (("passthrough", "bench/claude"), ("translation", "bench/gpt-big")):
            body = agent_bodies(model, kb=args.body_kb)[8]
            (out_dir / f"messages-{name}.json").write_bytes(body)
            print(f"{out_dir / f'messages-{name}.json'}: {len(body) // 1024} KB", file=sys.stderr)
        return 0
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="modelgate-agents-"))
    load_before = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    mock_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
    env["PYTHONPATH"] = args.src
    mock = start(
        [
            py,
            str(BENCH / "mock_upstream.py"),
            "--port",
            str(mock_port),
            "--chunks",
            str(args.chunks),
            "--chunk-delay-ms",
            str(args.chunk_ms),
        ],
        mock_port,
        work / "mock.log",
        env,
    )
    rows: list[dict[str, Any]] = []
    try:
        (work / "catalog.yaml").write_text(CATALOG.format(port=mock_port, big=BIG))
        db = f"sqlite:///{work}/modelgate.db"
        key = procs.create_key(db, "agents@example.com", cli=(py, "-m", "modelgate.cli"), env=env)
        port = free_port()
        gw_env = {
            **env,
            "MODELGATE_CONFIG": str(work / "catalog.yaml"),
            "MODELGATE_DATABASE_URL": db,
            "MODELGATE_BOOTSTRAP": "false",
            "MODELGATE_LOG_LEVEL": "warning",
        }
        gw = start([py, "-m", "modelgate.cli", "serve", "--port", str(port)], port, work / "gw.log", gw_env)
        try:
            direct_bodies = agent_bodies("mock-claude", kb=args.body_kb)
            sizes = [len(b) // 1024 for b in direct_bodies]
            print(f"[agents] bodies {min(sizes)}-{max(sizes)} KB; direct to the mock", file=sys.stderr)
            direct = asyncio.run(
                open_loop(mock_port, "/v1/messages", direct_bodies, "", rate=args.rate, seconds=args.seconds)
            )
            rows.append(summary("direct to the mock", direct, None))
            warm = agent_bodies("agents/claude", kb=args.body_kb, variants=2)
            asyncio.run(open_loop(port, "/v1/messages", warm, key, rate=10, seconds=1))
            for case in args.cases.split(","):
                model = {"pass-through": "agents/claude", "translation": "agents/gpt"}[case]
                bodies = agent_bodies(model, kb=args.body_kb)
                print(f"[agents] {case}", file=sys.stderr)
                rss0, cpu0 = rss_mb(gw.pid), cpu_s(gw.pid)
                with PeakRSS(gw.pid) as peak:
                    res = asyncio.run(
                        open_loop(port, "/v1/messages", bodies, key, rate=args.rate, seconds=args.seconds)
                    )
                row = summary(case, res, direct)
                row["cpu_ms_per_request"] = (cpu_s(gw.pid) - cpu0) / max(row["sent"], 1) * 1000
                row["rss_before_mb"], row["rss_after_mb"] = rss0, rss_mb(gw.pid)
                row["rss_peak_mb"] = peak.peak
                rows.append(row)
        finally:
            stop(gw)
    finally:
        stop(mock)
    meta = {
        "rate": args.rate,
        "seconds": args.seconds,
        "chunks": args.chunks,
        "chunk_ms": args.chunk_ms,
        "body_kb_min": min(sizes),
        "body_kb_max": max(sizes),
        "load_before": load_before,
        "load_after": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(table(rows, meta))
    (BENCH / "results").mkdir(exist_ok=True)
    out = BENCH / "results" / f"agents-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"[agents] raw figures in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
