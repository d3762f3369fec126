"""Benchmark orchestrator: the mock upstream directly, modelgate in front of it, and LiteLLM proxy
(a baseline installed into ``.bench-venv/``), measured in the same run with the same request body.

    bash bench/run.sh                      # everything, defaults (a few minutes)
    BENCH_DURATION=20 BENCH_RSS_REQUESTS=1000000 bash bench/run.sh   # longer, 1M-request RSS check

Environment knobs (all optional):
  BENCH_DURATION       seconds per throughput/latency measurement (default 10)
  BENCH_CONNECTIONS    connections for the throughput figure (default 32)
  BENCH_RSS_REQUESTS   requests sent before the second RSS reading (default 100000)
  BENCH_BASELINE_RSS_REQUESTS  the same for the baseline (default 5000: it runs at ~100-200 req/s)
  BENCH_SKIP_BASELINE  1 to skip LiteLLM;  BENCH_SKIP_SCALING 1 to skip the 2-worker run
  BENCH_SKIP_EMBED_LOCAL  1 to skip the local embedding model's embeddings/s (bench/embeddings.py)
  BENCH_WRITE_DOCS     0 to leave docs/benchmarks.md alone (default 1)
  BENCH_SKIP_SCALEOUT  1 to skip the PostgreSQL + Redis columns (bench/scaleout.py)
  BENCH_PG_URL         an admin URL of the PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres)
  BENCH_REDIS_URL      default redis://127.0.0.1:6379/0;  BENCH_STRESS_SECONDS  the 200-connection run (30)

Results: ``bench/results/<timestamp>.json`` and the table between the markers in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

import doors  # bench/doors.py
import embeddings  # bench/embeddings.py (this directory is on sys.path when run as a script)
import procs  # bench/procs.py
import scaleout  # bench/scaleout.py
from load import WRK, loadgen, wrk  # bench/load.py
from procs import free_port, process, tree_cpu, tree_rss_mb
from report import fmt, table  # bench/report.py

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
BASE_VENV = ROOT / ".bench-venv"
DURATION = float(os.environ.get("BENCH_DURATION", "10"))
CONNS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
RSS_N = int(os.environ.get("BENCH_RSS_REQUESTS", "100000"))
BASE_RSS_N = int(os.environ.get("BENCH_BASELINE_RSS_REQUESTS", "5000"))
SKIP_BASELINE = os.environ.get("BENCH_SKIP_BASELINE") == "1"
SKIP_SCALING = os.environ.get("BENCH_SKIP_SCALING") == "1"
SKIP_EMBED_LOCAL = os.environ.get("BENCH_SKIP_EMBED_LOCAL") == "1"
SKIP_SCALEOUT = os.environ.get("BENCH_SKIP_SCALEOUT") == "1"
WRITE_DOCS = os.environ.get("BENCH_WRITE_DOCS", "1") == "1"
STREAM_CHUNK_DELAY_MS = 2.0
SHORT_CHUNKS, LONG_CHUNKS = 8, 64  # the fast mock's chunks per stream; the "long" mock's
BODY = BENCH / "body.json"
BODY_STREAM = BENCH / "body_stream.json"
SLOW_BODY = BODY_STREAM  # replaced in main() by a copy naming the paced model
LONG_BODY = BODY_STREAM  # replaced in main() by a copy naming the 64-chunk model

CATALOG = (
    """
providers:
  # The built-in "local" provider would load the embedded model (hundreds of MB); the benchmark
  # measures the gateway without it, so it is pointed at the mock like the others.
  local:
    type: openai
    base_url: http://127.0.0.1:{fast}/v1
    api_key: sk-bench
  benchmock:
    type: openai
    base_url: http://127.0.0.1:{fast}/v1
    api_key: sk-bench
    max_retries: 0
  benchmock-slow:
    type: openai
    base_url: http://127.0.0.1:{slow}/v1
    api_key: sk-bench
    max_retries: 0
  benchmock-long:
    type: openai
    base_url: http://127.0.0.1:{long}/v1
    api_key: sk-bench
    max_retries: 0
"""
    + doors.CATALOG_PROVIDERS
    + """
models:
  - id: bench/mock
    info: {{name: Bench mock, developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock, model: mock-model}}]
  - id: bench/mock-slow
    info: {{name: Bench mock (paced stream), developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock-slow, model: mock-model}}]
  - id: bench/mock-long
    info: {{name: Bench mock (64 chunks), developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock-long, model: mock-model}}]
"""
    + embeddings.CATALOG_MODELS
    + doors.CATALOG_MODELS
)

LITELLM_CONFIG = """
model_list:
  - model_name: bench/mock
    litellm_params: {{model: openai/mock-model, api_base: "http://127.0.0.1:{fast}/v1", api_key: sk-bench}}
  - model_name: bench/mock-slow
    litellm_params: {{model: openai/mock-model, api_base: "http://127.0.0.1:{slow}/v1", api_key: sk-bench}}
  - model_name: bench/mock-long
    litellm_params: {{model: openai/mock-model, api_base: "http://127.0.0.1:{long}/v1", api_key: sk-bench}}
litellm_settings:
  telemetry: false
"""


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def throughput(url: str, key: str | None) -> dict[str, float]:
    if WRK:
        return wrk(url, conns=CONNS, duration=DURATION, key=key, body=BODY)
    return loadgen(url, conns=CONNS, key=key, body=BODY)


def stream_cpu(url: str, key: str | None, pid: int, *, chunks: bool) -> dict[str, float]:
    """CPU per streamed request (8 chunks) at CONNS connections and, with ``chunks``, per chunk: the
    slope between 8-chunk and 64-chunk streams."""
    out: dict[str, float] = {}
    per_req: dict[int, float] = {}
    for n, body in ((SHORT_CHUNKS, BODY_STREAM), (LONG_CHUNKS, LONG_BODY))[: 2 if chunks else 1]:
        c0 = tree_cpu(pid)
        if WRK:
            res = wrk(url, conns=CONNS, duration=max(DURATION / 2, 1), key=key, body=body)
        else:
            res = loadgen(url, conns=CONNS, key=key, body=body, duration=max(DURATION / 2, 1))
        per_req[n] = (tree_cpu(pid) - c0) / max(res["requests"], 1.0) * 1e6
    out["stream_cpu_us"] = per_req[SHORT_CHUNKS]
    if chunks:
        out["chunk_cpu_us"] = (per_req[LONG_CHUNKS] - per_req[SHORT_CHUNKS]) / (LONG_CHUNKS - SHORT_CHUNKS)
    return out


def latency1(url: str, key: str | None) -> dict[str, float]:
    if WRK:
        return wrk(url, conns=1, duration=DURATION, key=key, body=BODY, latency=True)
    return loadgen(url, conns=1, key=key, body=BODY)


def measure(
    name: str, url: str, key: str | None, pid: int | None, *, rss_n: int, chunks: bool = True
) -> dict[str, object]:
    """``chunks``: also the CPU per streamed chunk (needs the 64-chunk model behind ``url``)."""
    log(f"{name}: warm-up")
    loadgen(url, conns=8, key=key, body=BODY, requests=2000, warmup=0)
    loadgen(url, conns=2, key=key, body=BODY_STREAM, requests=200, warmup=0)
    r: dict[str, object] = {"name": name}
    if pid is not None:
        r["rss_warm_mb"] = tree_rss_mb(pid)
    log(f"{name}: throughput at {CONNS} connections")
    c0 = tree_cpu(pid) if pid is not None else 0.0
    r["throughput"] = throughput(url, key)
    if pid is not None:
        done = max(r["throughput"]["requests"], 1.0)  # type: ignore[index]
        r["cpu_us"] = (tree_cpu(pid) - c0) / done * 1e6
        r.update(stream_cpu(url, key, pid, chunks=chunks))
    log(f"{name}: latency at 1 connection")
    r["latency"] = latency1(url, key)
    log(f"{name}: streaming TTFB / inter-chunk gaps (1 connection, paced upstream)")
    r["stream"] = loadgen(url, conns=1, key=key, body=SLOW_BODY, duration=min(DURATION, 5))
    if pid is not None and rss_n:
        log(f"{name}: {rss_n} requests for the RSS check")
        t0 = time.monotonic()
        res = loadgen(url, conns=CONNS, key=key, body=BODY, requests=rss_n, warmup=0)
        r["rss_requests"] = res["requests"]
        r["rss_errors"] = res["errors"]
        r["rss_seconds"] = round(time.monotonic() - t0, 1)
        r["rss_after_mb"] = tree_rss_mb(pid)
    return r


def create_key(db_url: str) -> str:
    return procs.create_key(db_url, "bench@example.com", cli=(str(Path(PY).parent / "modelgate"),))


def run_modelgate(
    tmp: Path, fast: int, slow: int, long: int, workers: int, rss_n: int, only_throughput: bool = False
):
    cfg = tmp / "catalog.yaml"
    cfg.write_text(CATALOG.format(fast=fast, slow=slow, long=long))
    # One database for every modelgate run: the 1-worker run creates the tables, so the two workers of
    # the scaling run never race on first-start DDL.
    db_url = f"sqlite:///{tmp}/modelgate.db"
    key = create_key(db_url)
    port = free_port()
    env = {
        "MODELGATE_CONFIG": str(cfg),
        "MODELGATE_DATABASE_URL": db_url,
        "MODELGATE_BOOTSTRAP": "false",
        "MODELGATE_LOG_LEVEL": "warning",
    }
    cmd = [str(Path(PY).parent / "modelgate"), "serve", "--port", str(port), "--workers", str(workers)]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with process(cmd, port=port, env=env, logfile=tmp / f"modelgate-w{workers}.log") as proc:
        if only_throughput:
            loadgen(url, conns=8, key=key, body=BODY, requests=2000 * workers, warmup=0)
            return {"name": f"modelgate x{workers}", "throughput": throughput(url, key)}
        res = measure(f"modelgate (workers={workers})", url, key, proc.pid, rss_n=rss_n)
        if not SKIP_SCALEOUT:
            log(f"modelgate: {scaleout.STRESS_CONNS} connections for {scaleout.STRESS_SECONDS:g}s")
            res["stress"] = scaleout.stress(url, key, BODY)
            log("modelgate: CPU time per request")
            res["cpu"] = scaleout.cpu_per_request(url, key, BODY, pid=proc.pid, seconds=DURATION, conns=CONNS)
        log("embeddings: gateway overhead against the mock upstream")
        res["embeddings"] = embeddings.overhead(
            loadgen,
            direct=f"http://127.0.0.1:{fast}/v1/embeddings",
            gateway=f"http://127.0.0.1:{port}/v1/embeddings",
            key=key,
            tmp=tmp,
            duration=DURATION,
            conns=CONNS,
        )
        log("doors: chat vs Messages, Responses and the media doors on the same mock")
        res["doors"] = doors.overhead(
            loadgen, base=f"http://127.0.0.1:{port}", key=key, tmp=tmp, duration=DURATION, conns=CONNS
        )
        res["ledger_check"] = ledger_check(db_url)
        return res


def ledger_check(db_url: str) -> dict[str, int]:
    """After the run: open holds should be 0 and charges should equal logged credits."""
    import sqlite3

    time.sleep(1.0)
    path = db_url.removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    try:
        holds = con.execute("select count(*) from holds").fetchone()[0]
        charged = -(
            con.execute("select coalesce(sum(credits),0) from ledger where kind='charge'").fetchone()[0]
        )
        logged = con.execute("select coalesce(sum(credits),0) from request_logs").fetchone()[0]
        n = con.execute("select count(*) from request_logs").fetchone()[0]
    finally:
        con.close()
    return {"open_holds": holds, "charged_credits": charged, "logged_credits": logged, "logged_requests": n}


def run_bare(tmp: Path, fast: int) -> dict[str, object]:
    """The ceiling: bench/bare_proxy.py (same server stack, forwards bodies unchanged) on the mock."""
    port = free_port()
    cmd = [PY, str(BENCH / "bare_proxy.py"), "--port", str(port), "--upstream", f"http://127.0.0.1:{fast}"]
    with process(cmd, port=port, logfile=tmp / "bare.log") as proc:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        res = measure("bare pass-through proxy (ceiling)", url, None, proc.pid, rss_n=0, chunks=False)
    # it forwards to the unpaced mock: its TTFB and gaps are not comparable with the paced columns
    res["stream"] = {"ttfb_p50_ms": float("nan"), "gap_mean_ms": float("nan")}
    return res


def run_litellm(tmp: Path, fast: int, slow: int, long: int) -> dict[str, object] | None:
    exe = BASE_VENV / "bin" / "litellm"
    if not exe.exists():
        log("LiteLLM is not installed in .bench-venv (bash bench/run.sh installs it); skipping the baseline")
        return None
    cfg = tmp / "litellm.yaml"
    cfg.write_text(LITELLM_CONFIG.format(fast=fast, slow=slow, long=long))
    port = free_port()
    cmd = [str(exe), "--config", str(cfg), "--port", str(port), "--num_workers", "1"]
    master = "sk-" + secrets.token_hex(32)  # auth on (master key only: LiteLLM has no database here)
    env = {
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_ADMIN_UI": "True",
        "LITELLM_MASTER_KEY": master,
    }
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with process(cmd, port=port, env=env, logfile=tmp / "litellm.log", timeout=180) as proc:
        return measure("LiteLLM proxy (baseline)", url, master, proc.pid, rss_n=BASE_RSS_N)


def main() -> int:
    (BENCH / "results").mkdir(exist_ok=True)
    slow_body = json.loads(BODY_STREAM.read_text())
    slow_body["model"] = "bench/mock-slow"
    tmp = Path(tempfile.mkdtemp(prefix="modelgate-bench-"))
    global SLOW_BODY
    SLOW_BODY = tmp / "body_stream_slow.json"
    SLOW_BODY.write_text(json.dumps(slow_body))
    global LONG_BODY
    LONG_BODY = tmp / "body_stream_long.json"
    LONG_BODY.write_text(json.dumps({**slow_body, "model": "bench/mock-long"}))
    fast, slow, long = free_port(), free_port(), free_port()
    mock_cmd = [PY, str(BENCH / "mock_upstream.py"), "--port", str(fast)]
    slow_cmd = [
        PY,
        str(BENCH / "mock_upstream.py"),
        "--port",
        str(slow),
        "--chunk-delay-ms",
        str(STREAM_CHUNK_DELAY_MS),
    ]
    long_cmd = [PY, str(BENCH / "mock_upstream.py"), "--port", str(long), "--chunks", str(LONG_CHUNKS)]
    log(f"load generator: {'wrk' if WRK else 'bench/loadgen.py (wrk not found)'}; work dir {tmp}")
    with (
        process(mock_cmd, port=fast, logfile=tmp / "mock.log"),
        process(slow_cmd, port=slow, logfile=tmp / "mock-slow.log"),
        process(long_cmd, port=long, logfile=tmp / "mock-long.log"),
    ):
        direct = f"http://127.0.0.1:{fast}/v1/chat/completions"
        mock = measure("mock upstream (direct)", direct, None, None, rss_n=0)
        # the paced stream needs the slow mock when hit directly
        mock["stream"] = loadgen(
            f"http://127.0.0.1:{slow}/v1/chat/completions",
            conns=1,
            key=None,
            body=SLOW_BODY,
            duration=min(DURATION, 5),
        )
        bare = run_bare(tmp, fast)
        mg = run_modelgate(tmp, fast, slow, long, 1, RSS_N)
        # Right after the SQLite column, so that both face the same minutes of the shared machine.
        scale = None
        if not SKIP_SCALEOUT:
            tools = scaleout.Tools(
                process=process,
                measure=measure,
                loadgen=loadgen,
                free_port=free_port,
                log=log,
                modelgate=str(Path(PY).parent / "modelgate"),
                tmp=tmp,
                catalog=tmp / "catalog.yaml",
                body=BODY,
                conns=CONNS,
                duration=DURATION,
            )
            scale = scaleout.run(tools)
        mg2 = None if SKIP_SCALING else run_modelgate(tmp, fast, slow, long, 2, 0, only_throughput=True)
        base = None if SKIP_BASELINE else run_litellm(tmp, fast, slow, long)
    local = None
    if not SKIP_EMBED_LOCAL:
        log("embeddings: the local embedding model (built-in catalogue)")
        db_local = f"sqlite:///{tmp}/embed-local.db"
        local = embeddings.local_model(
            loadgen, process, py=PY, tmp=tmp, port=free_port(), key=create_key(db_local), db_url=db_local
        )
    results = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "loadgen": "wrk" if WRK else "loadgen.py",
        "duration_s": DURATION,
        "mock": mock,
        "bare_proxy": bare,
        "modelgate": mg,
        "modelgate_2_workers": mg2,
        "baseline": base,
        "embeddings_local": local,
        "scaleout": scale,
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (BENCH / "results" / f"{stamp}.json").write_text(json.dumps(results, indent=2, default=str))
    md = table(
        mock,
        mg,
        base,
        mg2,
        bare,
        conns=CONNS,
        chunks=(SHORT_CHUNKS, LONG_CHUNKS),
        pace_ms=STREAM_CHUNK_DELAY_MS,
    ) + embeddings.rows(mg.get("embeddings"), local, fmt)
    md += doors.rows(mg.get("doors"), fmt)
    if not SKIP_SCALEOUT:
        md += scaleout.rows(mock, mg, scale, fmt)
    md += (
        f"\nRun {results['when']} on {results['machine']}, Python {results['python']}, load generator "
        f"{results['loadgen']}, {DURATION:g}s per figure. Ledger check after the run: {mg['ledger_check']}.\n"
    )
    print("\n" + md)
    if WRITE_DOCS:
        doc = ROOT / "docs" / "benchmarks.md"
        if doc.exists():
            text = doc.read_text()
            new = re.sub(
                r"(<!-- bench:begin -->\n).*?(<!-- bench:end -->)",
                lambda m: m.group(1) + md + m.group(2),
                text,
                flags=re.S,
            )
            doc.write_text(new)
            log("updated docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
