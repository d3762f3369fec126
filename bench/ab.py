"""A/B benchmark of two builds of the gateway, interleaved against one mock upstream.

    bash bench/ab.sh REF_A REF_B          # e.g. bench/ab.sh origin/main HEAD;  "." = this working tree

Each ref is checked out into a temporary git worktree and served from it (one shared virtualenv,
the worktree's ``src`` first on ``PYTHONPATH``; the module actually imported is checked before the
run). Both gateways (one worker each, SQLite, auth + hold + settle + log on) and the bare
pass-through proxy (``bench/bare_proxy.py``, the ceiling) run beside one mock upstream the whole
time and are measured in turns, A B bare, then B A bare, …, so that the shared machine's drift
falls on both builds alike. Per round and build:

- requests/s at ``AB_CONNS`` connections (wrk) and the **gateway's CPU time per request** (process
  user + system time over the run / requests): the steadier figure on a shared machine;
- latency p50 / p99 at one connection, and the same for the bare proxy and the mock directly;
- CPU per streamed request (8 chunks) and **per streamed chunk** (the slope between 8-chunk and
  64-chunk streams from two mocks), at ``AB_CONNS`` connections;
- streaming time to first byte at one connection against a mock pacing its chunks 2 ms apart.

Printed: medians and [min-max] per build, B/A and xbare ratios taken within each round (then the
median), the load average before and after; JSON in ``bench/results/ab-<time>.json``.

Knobs (environment): AB_ROUNDS (3), AB_SECONDS per throughput figure (6), AB_LAT_SECONDS (4),
AB_CONNS (32), AB_STREAM=0 to skip the streaming figures, AB_PY (the interpreter; default
``.venv/bin/python``), AB_KEEP=1 to keep the work directory. A ref whose tree has
``bench/ab_catalog.yaml`` (a template with ``{fast}``, ``{long}``, ``{slow}`` ports) is served
with it instead of the default catalogue below (for catalogue format changes). AB_BUDGETS=B (or A,
or A,B): that build's key falls under budgets at every level (``bench/nested_budgets.py``: the
organisation's, its project's, its member's and its own limit), all checked by every hold.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs import create_key, free_port, process, tree_cpu  # bench/procs.py (this directory is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
ROUNDS = int(os.environ.get("AB_ROUNDS", "3"))
SECONDS = float(os.environ.get("AB_SECONDS", "6"))
LAT_SECONDS = float(os.environ.get("AB_LAT_SECONDS", "4"))
CONNS = int(os.environ.get("AB_CONNS", "32"))
STREAM = os.environ.get("AB_STREAM", "1") != "0"
KEEP = os.environ.get("AB_KEEP") == "1"
BUDGETS = {x.strip() for x in os.environ.get("AB_BUDGETS", "").split(",") if x.strip()}
PY = os.environ.get("AB_PY") or str(ROOT / ".venv" / "bin" / "python")
if not Path(PY).exists():
    PY = sys.executable
WRK = shutil.which("wrk")
SHORT_CHUNKS, LONG_CHUNKS = 8, 64

CATALOG = """
providers:
  local: {{type: openai, base_url: "http://127.0.0.1:{fast}/v1", api_key: sk-bench}}
  benchmock: {{type: openai, base_url: "http://127.0.0.1:{fast}/v1", api_key: sk-bench, max_retries: 0}}
  benchmock-long: {{type: openai, base_url: "http://127.0.0.1:{long}/v1", api_key: sk-bench, max_retries: 0}}
  benchmock-slow: {{type: openai, base_url: "http://127.0.0.1:{slow}/v1", api_key: sk-bench, max_retries: 0}}
models:
  - id: bench/mock
    info: {{name: Bench mock, developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock, model: mock-model}}]
  - id: bench/mock-long
    info: {{name: Bench mock (64 chunks), developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock-long, model: mock-model}}]
  - id: bench/mock-slow
    info: {{name: Bench mock (paced stream), developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock-slow, model: mock-model}}]
"""


def log(msg: str) -> None:
    print(f"[ab] {msg}", file=sys.stderr, flush=True)


def wrk(
    url: str, *, conns: int, seconds: float, key: str, body: Path, latency: bool = False
) -> dict[str, float]:
    if WRK is None:
        raise SystemExit("bench/ab.sh needs wrk (apt-get install -y wrk)")
    cmd = [WRK, "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-s", str(BENCH / "post.lua"), url]
    if latency:
        cmd.insert(1, "--latency")
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_KEY": key}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res = {"rps": float(m.group(1)) if m else 0.0}
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["errors"] = errors + (sum(float(g) for g in m.groups()) if m else 0.0)
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
        if m:
            v = float(m.group(1))
            res[f"p{pct}_ms"] = v / 1000 if m.group(2) == "us" else (v * 1000 if m.group(2) == "s" else v)
    return res


def loadgen(url: str, *, key: str, body: Path, seconds: float) -> dict[str, float]:
    cmd = [PY, str(BENCH / "loadgen.py"), url, "--body", str(body), "-c", "1", "-d", str(seconds), "--json"]
    if key:
        cmd += ["--key", key]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


@dataclass
class Build:
    label: str  # "A" / "B"
    ref: str
    commit: str
    src: Path
    tree: Path
    port: int = 0
    pid: int = 0
    key: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float | None) -> None:
        if value is not None and value == value:
            self.samples.setdefault(name, []).append(value)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def checkout(ref: str, label: str, work: Path) -> Build:
    if ref in (".", "WORKTREE"):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        return Build(label, ref, commit.strip() + " + working tree", ROOT / "src", ROOT)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = work / f"tree-{label}"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), commit], cwd=ROOT, check=True)
    return Build(label, ref, commit, tree / "src", tree)


def env_for(b: Build, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
    env["PYTHONPATH"] = str(b.src)
    return {**env, **(extra or {})}


def verify_import(b: Build) -> str:
    """The module the interpreter imports for this build must be the worktree's own."""
    out = subprocess.run(
        [PY, "-c", "import modelgate; print(modelgate.__file__)"],
        env=env_for(b),
        cwd=b.tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(b.src.resolve()):
        raise SystemExit(f"build {b.label} ({b.ref}) imports {out}, not its own {b.src}")
    return out


def start_gateway(b: Build, work: Path, ports: dict[str, int], stack: Any) -> None:
    d = work / f"gw-{b.label}"
    d.mkdir()
    template = b.tree / "bench" / "ab_catalog.yaml"
    cat = template.read_text() if template.exists() else CATALOG
    (d / "catalog.yaml").write_text(cat.format(**ports))
    db = f"sqlite:///{d}/modelgate.db"
    cli = (PY, "-m", "modelgate.cli")
    b.key = create_key(db, "ab@example.com", cli=cli, env=env_for(b), cwd=b.tree)
    if b.label in BUDGETS:
        budgets = [PY, str(BENCH / "nested_budgets.py"), db, "ab@example.com"]
        subprocess.run(budgets, env=env_for(b), cwd=b.tree, check=True)
    b.port = free_port()
    env = env_for(
        b,
        {
            "MODELGATE_CONFIG": str(d / "catalog.yaml"),
            "MODELGATE_DATABASE_URL": db,
            "MODELGATE_BOOTSTRAP": "false",
            "MODELGATE_LOG_LEVEL": "warning",
        },
    )
    cmd = [*cli, "serve", "--port", str(b.port), "--workers", "1"]
    b.pid = stack.enter_context(
        process(cmd, port=b.port, logfile=d / "serve.log", env=env, cwd=b.tree, inherit_env=False)
    ).pid


def bodies(work: Path) -> dict[str, Path]:
    plain = json.loads((BENCH / "body.json").read_text())
    out = {"plain": BENCH / "body.json"}
    for name, model in (("short", "bench/mock"), ("long", "bench/mock-long"), ("slow", "bench/mock-slow")):
        p = work / f"body-{name}.json"
        p.write_text(json.dumps({**plain, "model": model, "stream": True}))
        out[name] = p
    return out


def measure_round(
    r: int, builds: list[Build], bare: Build, mock: Build, slow_url: str, body: dict[str, Path]
) -> None:
    order = builds if r % 2 == 0 else builds[::-1]
    chat = "/v1/chat/completions"
    log(
        f"round {r + 1}/{ROUNDS}: throughput at {CONNS} connections ({' '.join(b.label for b in order)} bare)"
    )
    for b in [*order, bare]:
        c0 = tree_cpu(b.pid)
        res = wrk(b.base + chat, conns=CONNS, seconds=SECONDS, key=b.key, body=body["plain"])
        done = max(res["requests"], 1.0)
        b.add("rps", res["rps"])
        b.add("errors", res["errors"])
        b.add("cpu_us", (tree_cpu(b.pid) - c0) / done * 1e6)
    for b in order:
        b.add("x_bare", b.samples["rps"][-1] / bare.samples["rps"][-1])
    log(f"round {r + 1}/{ROUNDS}: latency at 1 connection")
    for b in [*order, bare, mock]:
        res = wrk(b.base + chat, conns=1, seconds=LAT_SECONDS, key=b.key, body=body["plain"], latency=True)
        b.add("p50_ms", res.get("p50_ms"))
        b.add("p99_ms", res.get("p99_ms"))
    for b in [*order, bare]:
        b.add("added_p50_ms", b.samples["p50_ms"][-1] - mock.samples["p50_ms"][-1])
        b.add("added_p99_ms", b.samples["p99_ms"][-1] - mock.samples["p99_ms"][-1])
    if not STREAM:
        return
    log(f"round {r + 1}/{ROUNDS}: streams (CPU per chunk, TTFB)")
    for b in [*order, bare]:
        per_req = {}
        # the bare proxy forwards every body to the 8-chunk mock: its per-chunk slope means nothing
        for kind in ("short", "long") if b is not bare else ("short",):
            c0 = tree_cpu(b.pid)
            res = wrk(b.base + chat, conns=CONNS, seconds=SECONDS / 2, key=b.key, body=body[kind])
            per_req[kind] = (tree_cpu(b.pid) - c0) / max(res["requests"], 1.0) * 1e6
            b.add(f"stream_{kind}_errors", res["errors"])
        b.add("stream_cpu_us", per_req["short"])
        if b is not bare:
            b.add("chunk_cpu_us", (per_req["long"] - per_req["short"]) / (LONG_CHUNKS - SHORT_CHUNKS))
    for b in [*order, mock]:
        url = slow_url if b is mock else b.base + chat
        res = loadgen(url, key=b.key, body=body["slow"], seconds=min(LAT_SECONDS, 3))
        b.add("ttfb_p50_ms", res.get("ttfb_p50_ms"))
        # The same, back to back (the 8-chunk mock sends its stream at once): no idle gap between
        # requests. A paced stream leaves the process idle ~17 ms before the next request, and a
        # process waking from idle runs its first work several times slower on this VM.
        url = b.base + chat  # the mock: its fast (8-chunk) port
        res = loadgen(url, key=b.key, body=body["short"], seconds=min(LAT_SECONDS, 3))
        b.add("ttfb_b2b_p50_ms", res.get("ttfb_p50_ms"))
    for b in order:
        b.add("added_ttfb_ms", b.samples["ttfb_p50_ms"][-1] - mock.samples["ttfb_p50_ms"][-1])
        b.add("added_ttfb_b2b_ms", b.samples["ttfb_b2b_p50_ms"][-1] - mock.samples["ttfb_b2b_p50_ms"][-1])


def med(xs: list[float] | None) -> float:
    return statistics.median(xs) if xs else float("nan")


def cell(xs: list[float] | None, nd: int = 0) -> str:
    if not xs:
        return "n/a"
    return f"{med(xs):,.{nd}f} [{min(xs):,.{nd}f}-{max(xs):,.{nd}f}]"


def ratio_cell(a: list[float] | None, b: list[float] | None) -> str:
    """Median over rounds of b/a (same round)."""
    if not a or not b:
        return "n/a"
    rs = [y / x for x, y in zip(a, b, strict=False) if x]
    return f"x{med(rs):.2f} [{min(rs):.2f}-{max(rs):.2f}]" if rs else "n/a"


def report(builds: list[Build], bare: Build, mock: Build, meta: dict[str, Any]) -> str:
    a, b = builds
    s = lambda x, k: x.samples.get(k)  # noqa: E731
    lines = [
        f"A = `{a.ref}` ({a.commit}), B = `{b.ref}` ({b.commit}); {meta['rounds']} interleaved rounds, "
        f"{SECONDS:g} s per throughput figure, {LAT_SECONDS:g} s per latency figure, {CONNS} connections; "
        f"load average {meta['load_before']} before, {meta['load_after']} after; {meta['when']}.",
        "",
        "| figure (median [min-max] over rounds) | A | B | bare proxy | B / A |",
        "|---|---|---|---|---|",
    ]

    def row(name: str, key: str, nd: int = 0, with_bare: bool = True, ratio: bool = True) -> None:
        bare_cell = cell(s(bare, key), nd) if with_bare else "—"
        r = ratio_cell(s(a, key), s(b, key)) if ratio else "—"
        lines.append(f"| {name} | {cell(s(a, key), nd)} | {cell(s(b, key), nd)} | {bare_cell} | {r} |")

    row(f"requests/s at {CONNS} connections", "rps")
    row("x the bare proxy (same round)", "x_bare", 2, with_bare=False, ratio=False)
    row(f"**gateway CPU per request (µs)** at {CONNS} connections", "cpu_us")
    row("errors (non-2xx + socket)", "errors", 0, ratio=False)
    row("latency p50 at 1 connection (ms)", "p50_ms", 3)
    row("latency p99 at 1 connection (ms)", "p99_ms", 3)
    row("**added** p50 over the mock (ms)", "added_p50_ms", 3, ratio=False)
    row("**added** p99 over the mock (ms)", "added_p99_ms", 3, ratio=False)
    if STREAM:
        row(f"CPU per streamed request, {SHORT_CHUNKS} chunks (µs)", "stream_cpu_us")
        row("**CPU per streamed chunk (µs)**", "chunk_cpu_us", 1, with_bare=False)
        row("stream TTFB p50 at 1 connection (ms; paced mock)", "ttfb_p50_ms", 3, with_bare=False)
        row("**added** stream TTFB p50 (ms)", "added_ttfb_ms", 3, with_bare=False, ratio=False)
        row("stream TTFB p50, back to back (ms; unpaced mock)", "ttfb_b2b_p50_ms", 3, with_bare=False)
        row(
            "**added** stream TTFB p50, back to back (ms)",
            "added_ttfb_b2b_ms",
            3,
            with_bare=False,
            ratio=False,
        )
    lines.append(
        f"\nMock directly: p50 {cell(s(mock, 'p50_ms'), 3)} ms, p99 {cell(s(mock, 'p99_ms'), 3)} ms"
        " at 1 connection."
    )
    lines.append("")
    lines.append("Targets (issue 21), judged on B:")
    checks = [
        ("≥ 0.9x the bare proxy at 32 connections", med(s(b, "x_bare")), lambda v: v >= 0.9, "x{:.2f}"),
        ("≤ 150 µs gateway CPU per request", med(s(b, "cpu_us")), lambda v: v <= 150, "{:.0f} µs"),
        ("added p50 ≤ 0.25 ms at 1 connection", med(s(b, "added_p50_ms")), lambda v: v <= 0.25, "{:.3f} ms"),
        ("added p99 ≤ 1 ms at 1 connection", med(s(b, "added_p99_ms")), lambda v: v <= 1.0, "{:.3f} ms"),
    ]
    if STREAM:
        checks += [
            ("≤ 5 µs CPU per streamed chunk", med(s(b, "chunk_cpu_us")), lambda v: v <= 5, "{:.1f} µs"),
            ("stream TTFB overhead ≤ 0.3 ms", med(s(b, "added_ttfb_ms")), lambda v: v <= 0.3, "{:.3f} ms"),
            (
                "stream TTFB overhead ≤ 0.3 ms, back to back",
                med(s(b, "added_ttfb_b2b_ms")),
                lambda v: v <= 0.3,
                "{:.3f} ms",
            ),
        ]
    for name, v, ok, f in checks:
        status = "n/a" if v != v else ("**met**" if ok(v) else "**missed**")
        lines.append(f"- {name}: {'n/a' if v != v else f.format(v)}, {status}")
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    from contextlib import ExitStack

    work = Path(tempfile.mkdtemp(prefix="modelgate-ab-"))
    builds: list[Build] = []
    load_before = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        for ref, label in zip(sys.argv[1:3], "AB", strict=True):
            builds.append(checkout(ref, label, work))
            log(f"{label} = {ref} ({builds[-1].commit}) imports {verify_import(builds[-1])}")
        ports = {"fast": free_port(), "long": free_port(), "slow": free_port()}
        mock_py = [PY, str(BENCH / "mock_upstream.py")]
        with ExitStack() as stack:
            base_env = dict(os.environ)
            mock_pid = stack.enter_context(
                process(
                    [*mock_py, "--port", str(ports["fast"])],
                    port=ports["fast"],
                    logfile=work / "mock.log",
                    env=base_env,
                    cwd=ROOT,
                    inherit_env=False,
                )
            ).pid
            stack.enter_context(
                process(
                    [*mock_py, "--port", str(ports["long"]), "--chunks", str(LONG_CHUNKS)],
                    port=ports["long"],
                    logfile=work / "mock-long.log",
                    env=base_env,
                    cwd=ROOT,
                    inherit_env=False,
                )
            )
            stack.enter_context(
                process(
                    [*mock_py, "--port", str(ports["slow"]), "--chunk-delay-ms", "2"],
                    port=ports["slow"],
                    logfile=work / "mock-slow.log",
                    env=base_env,
                    cwd=ROOT,
                    inherit_env=False,
                )
            )
            bare = Build("bare", "bare proxy", "", ROOT, ROOT, port=free_port())
            bare.pid = stack.enter_context(
                process(
                    [
                        PY,
                        str(BENCH / "bare_proxy.py"),
                        "--port",
                        str(bare.port),
                        "--upstream",
                        f"http://127.0.0.1:{ports['fast']}",
                    ],
                    port=bare.port,
                    logfile=work / "bare.log",
                    env=base_env,
                    cwd=ROOT,
                    inherit_env=False,
                )
            ).pid
            mock = Build("mock", "mock", "", ROOT, ROOT, port=ports["fast"], pid=mock_pid)
            for b in builds:
                start_gateway(b, work, ports, stack)
            body = bodies(work)
            log("warm-up")
            for b in [*builds, bare]:
                wrk(b.base + "/v1/chat/completions", conns=8, seconds=2, key=b.key, body=body["plain"])
                if STREAM:
                    wrk(b.base + "/v1/chat/completions", conns=8, seconds=1, key=b.key, body=body["short"])
            for r in range(ROUNDS):
                measure_round(
                    r, builds, bare, mock, f"http://127.0.0.1:{ports['slow']}/v1/chat/completions", body
                )
        meta = {
            "rounds": ROUNDS,
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_before": load_before,
            "load_after": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        }
        md = report(builds, bare, mock, meta)
        print(md)
        (BENCH / "results").mkdir(exist_ok=True)
        raw = {
            "meta": meta,
            **{
                b.label: {"ref": b.ref, "commit": b.commit, "samples": b.samples}
                for b in [*builds, bare, mock]
            },
        }
        out = BENCH / "results" / f"ab-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(raw, indent=2))
        log(f"raw samples in {out}")
    finally:
        for b in builds:
            if b.tree != ROOT:
                subprocess.run(["git", "worktree", "remove", "--force", str(b.tree)], cwd=ROOT, check=False)
        if not KEEP:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work directory kept: {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
