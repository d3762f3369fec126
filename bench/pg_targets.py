"""Issue 21's PostgreSQL targets, on this working tree: the same build served on an SQLite file and on
PostgreSQL (+ Redis when one answers), one worker each, beside one mock upstream, measured in turns
(S P, then P S, ...) so that the shared machine's drift falls on both alike.

    .venv/bin/python bench/pg_targets.py

Per round and database: requests/s at ``PGT_CONNS`` connections for chat and for Responses with
``store: true`` (the default), the gateway's CPU per request and the PostgreSQL server's (its
backends' ``/proc`` times, when it runs on this machine), and latency p50 / p99 at one connection
for both, with the mock measured directly in the same round (the **added** figures). Judged:

- PostgreSQL chat ≥ 1x SQLite's requests/s at ``PGT_CONNS`` connections (same round);
- PostgreSQL chat p50 ≤ 0.5 ms at one connection (added over the mock, and total);
- Responses ``store: true`` ≥ 0.8x chat's requests/s, on each database (same round).

Knobs: PGT_ROUNDS (3), PGT_SECONDS per throughput figure (6), PGT_LAT_SECONDS (4), PGT_CONNS (32),
PGT_REDIS=0 (PostgreSQL without Redis), BENCH_PG_URL (an admin connection: a fresh database is
made and dropped), BENCH_REDIS_URL. Needs wrk.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import ab  # bench/ab.py: wrk, the interpreter
from procs import create_key, free_port, process, tree_cpu

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
ROUNDS = int(os.environ.get("PGT_ROUNDS", "3"))
SECONDS = float(os.environ.get("PGT_SECONDS", "6"))
LAT_SECONDS = float(os.environ.get("PGT_LAT_SECONDS", "4"))
CONNS = int(os.environ.get("PGT_CONNS", "32"))
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
USE_REDIS = os.environ.get("PGT_REDIS", "1") != "0"

CATALOG = """
providers:
  benchmock: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench, max_retries: 0}}
models:
  - id: bench/mock
    info: {{name: Bench mock, developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock, model: mock-model}}]
"""
# Responses with store: true (the default) and, to tell the cost of keeping the answer from the
# door's own, with store: false.
CASES = {"chat": "/v1/chat/completions", "store": "/v1/responses", "nostore": "/v1/responses"}


def log(msg: str) -> None:
    print(f"[pg_targets] {msg}", file=sys.stderr, flush=True)


def _pg(sql: str, url: str = PG_ADMIN_URL) -> list[Any]:
    import asyncpg

    async def go() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(go())


def _redis_ok() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


def _backends(db_url: str) -> list[int]:
    """The database's server processes (this query's own left out)."""
    sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    return [int(row["pid"]) for row in _pg(sql, db_url)]


def _cpu(pids: list[int]) -> float:
    """CPU seconds of these processes (0 for those not on this machine)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Gateway:
    def __init__(self, label: str, db_url: str) -> None:
        self.label, self.db_url = label, db_url
        self.port = free_port()
        self.pid = 0
        self.key = ""
        self.samples: dict[str, list[float]] = {}

    @property
    def pg(self) -> bool:
        return self.db_url.startswith("postgresql")

    def add(self, name: str, value: float | None) -> None:
        if value is not None and value == value:
            self.samples.setdefault(name, []).append(value)

    def start(self, stack: ExitStack, work: Path, catalog: Path) -> None:
        cli = (ab.PY, "-m", "modelgate.cli")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGATE_")}
        env["PYTHONPATH"] = str(ROOT / "src")
        self.key = create_key(self.db_url, "pgt@example.com", cli=cli, env=env, cwd=ROOT)
        env.update(
            MODELGATE_CONFIG=str(catalog),
            MODELGATE_DATABASE_URL=self.db_url,
            MODELGATE_BOOTSTRAP="false",
            MODELGATE_LOG_LEVEL="warning",
        )
        if self.pg and USE_REDIS and _redis_ok():
            env.update(MODELGATE_REDIS_URL=REDIS_URL, MODELGATE_REDIS_PREFIX=f"pgt:{secrets.token_hex(4)}:")
        cmd = [*cli, "serve", "--port", str(self.port), "--workers", "1"]
        log_file = work / f"serve-{self.label}.log"
        self.pid = stack.enter_context(
            process(cmd, port=self.port, logfile=log_file, env=env, cwd=ROOT, inherit_env=False)
        ).pid


def measure(r: int, gws: list[Gateway], mock_url: str, bodies: dict[str, Path]) -> None:
    order = gws if r % 2 == 0 else gws[::-1]
    log(f"round {r + 1}/{ROUNDS}: {' '.join(g.label for g in order)}")
    for g in order:
        for case, path in CASES.items():
            url = f"http://127.0.0.1:{g.port}{path}"
            backends = _backends(g.db_url) if g.pg else []
            c0, d0 = tree_cpu(g.pid), _cpu(backends)
            res = ab.wrk(url, conns=CONNS, seconds=SECONDS, key=g.key, body=bodies[case])
            done = max(res["requests"], 1.0)
            g.add(f"{case}_rps", res["rps"])
            g.add(f"{case}_errors", res["errors"])
            g.add(f"{case}_cpu_us", (tree_cpu(g.pid) - c0) / done * 1e6)
            if g.pg:
                g.add(f"{case}_db_us", (_cpu(backends) - d0) / done * 1e6)
            lat = ab.wrk(url, conns=1, seconds=LAT_SECONDS, key=g.key, body=bodies[case], latency=True)
            g.add(f"{case}_p50_ms", lat.get("p50_ms"))
            g.add(f"{case}_p99_ms", lat.get("p99_ms"))
        g.add("store_x_chat", g.samples["store_rps"][-1] / max(g.samples["chat_rps"][-1], 1e-9))
    mock = ab.wrk(mock_url, conns=1, seconds=LAT_SECONDS, key="", body=bodies["chat"], latency=True)
    for g in gws:
        for case in CASES:
            g.add(f"{case}_added_p50_ms", g.samples[f"{case}_p50_ms"][-1] - mock.get("p50_ms", 0.0))
    s, p = gws
    p.add("pg_x_sqlite", p.samples["chat_rps"][-1] / max(s.samples["chat_rps"][-1], 1e-9))


def cell(xs: list[float] | None, nd: int = 0) -> str:
    if not xs:
        return "n/a"
    return f"{statistics.median(xs):,.{nd}f} [{min(xs):,.{nd}f}-{max(xs):,.{nd}f}]"


def report(gws: list[Gateway], meta: dict[str, Any]) -> str:
    s, p = gws
    lines = [
        f"pg_targets: {meta['rounds']} interleaved rounds, {SECONDS:g} s per throughput figure, "
        f"{LAT_SECONDS:g} s per latency figure, {CONNS} connections; PostgreSQL{meta['redis']}; "
        f"load average {meta['load_before']} before, {meta['load_after']} after; {meta['when']}.",
        "",
        "| figure (median [min-max] over rounds) | SQLite | PostgreSQL |",
        "|---|---|---|",
    ]
    rows = [
        (f"chat requests/s at {CONNS} connections", "chat_rps", 0),
        (f"Responses store:true requests/s at {CONNS} connections", "store_rps", 0),
        ("store:true / chat (same round)", "store_x_chat", 2),
        (f"Responses store:false requests/s at {CONNS} connections", "nostore_rps", 0),
        ("gateway CPU per chat request (µs)", "chat_cpu_us", 0),
        ("gateway CPU per stored request (µs)", "store_cpu_us", 0),
        ("gateway CPU per store:false request (µs)", "nostore_cpu_us", 0),
        ("PostgreSQL CPU per chat request (µs)", "chat_db_us", 0),
        ("PostgreSQL CPU per stored request (µs)", "store_db_us", 0),
        ("PostgreSQL CPU per store:false request (µs)", "nostore_db_us", 0),
        ("chat p50 / 1 connection (ms)", "chat_p50_ms", 3),
        ("chat **added** p50 / 1 connection (ms)", "chat_added_p50_ms", 3),
        ("chat p99 / 1 connection (ms)", "chat_p99_ms", 3),
        ("store:true p50 / 1 connection (ms)", "store_p50_ms", 3),
        ("store:true **added** p50 / 1 connection (ms)", "store_added_p50_ms", 3),
        ("errors, chat", "chat_errors", 0),
        ("errors, store:true", "store_errors", 0),
        ("errors, store:false", "nostore_errors", 0),
    ]
    for name, key, nd in rows:
        lines.append(f"| {name} | {cell(s.samples.get(key), nd)} | {cell(p.samples.get(key), nd)} |")

    def med(g: Gateway, key: str) -> float:
        xs = g.samples.get(key)
        return statistics.median(xs) if xs else float("nan")

    def judged(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    ratio = med(p, "pg_x_sqlite")
    added, total = med(p, "chat_added_p50_ms"), med(p, "chat_p50_ms")
    lines += [
        "",
        "Targets (issue 21):",
        f"- PostgreSQL ≥ 1x SQLite at {CONNS} connections (chat): x{ratio:.2f}, {judged(ratio >= 1.0)}",
        f"- PostgreSQL p50 ≤ 0.5 ms at one connection (chat): added {added:.3f} ms, "
        f"{judged(added <= 0.5)}; total {total:.3f} ms, {judged(total <= 0.5)}",
    ]
    for g in gws:
        x = med(g, "store_x_chat")
        lines.append(f"- Responses store:true ≥ 0.8x chat on {g.label}: x{x:.2f}, {judged(x >= 0.8)}")
    return "\n".join(lines) + "\n"


def main() -> int:
    try:
        _pg("SELECT 1")
    except Exception as exc:
        raise SystemExit(f"no PostgreSQL at {PG_ADMIN_URL} (BENCH_PG_URL): {exc!r}") from None
    work = Path(tempfile.mkdtemp(prefix="modelgate-pgt-"))
    name = f"mgpgt_{secrets.token_hex(4)}"
    _pg(f'CREATE DATABASE "{name}"')
    load_before = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        mock_port = free_port()
        (work / "catalog.yaml").write_text(CATALOG.format(port=mock_port))
        store_body = work / "store.json"
        prompt = "Say hello in one short sentence."
        resp = {"model": "bench/mock", "input": prompt, "max_output_tokens": 64}
        store_body.write_text(json.dumps(resp))
        (work / "nostore.json").write_text(json.dumps({**resp, "store": False}))
        bodies = {"chat": BENCH / "body.json", "store": store_body, "nostore": work / "nostore.json"}
        gws = [
            Gateway("SQLite", f"sqlite:///{work}/modelgate.db"),
            Gateway("PostgreSQL", PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"),
        ]
        with ExitStack() as stack:
            mock = [ab.PY, str(BENCH / "mock_upstream.py"), "--port", str(mock_port)]
            stack.enter_context(process(mock, port=mock_port, logfile=work / "mock.log", cwd=ROOT))
            for g in gws:
                g.start(stack, work, work / "catalog.yaml")
            log("warm-up")
            for g in gws:
                for case, path in CASES.items():
                    url = f"http://127.0.0.1:{g.port}{path}"
                    ab.wrk(url, conns=8, seconds=2, key=g.key, body=bodies[case])
            for r in range(ROUNDS):
                measure(r, gws, f"http://127.0.0.1:{mock_port}/v1/chat/completions", bodies)
        meta = {
            "rounds": ROUNDS,
            "redis": " + Redis" if USE_REDIS and _redis_ok() else " (no Redis)",
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_before": load_before,
            "load_after": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        }
        print(report(gws, meta))
        (BENCH / "results").mkdir(exist_ok=True)
        out = BENCH / "results" / f"pg-targets-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps({"meta": meta, "samples": {g.label: g.samples for g in gws}}, indent=1))
        log(f"raw figures: {out}")
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
