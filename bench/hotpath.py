"""The gateway's own CPU per request, without the HTTP server or the load generator around it.

Builds the app in-process (as ``modelgate serve`` does: ``create_app_from_env``, SQLite, auth + hold +
settle + log on), runs its lifespan, and drives ``N`` requests through its ASGI callable directly,
``-c`` at a time, against the bench mock upstream (started here) over loopback. Prints the process CPU
per request (the figure to compare between commits: no uvicorn, no wrk in it), and with ``--profile``
the functions that cost most, with their calls per request (cProfile on the thread's CPU clock; the
profiler inflates the time several times, so compare its shares, not its absolute microseconds).

    python bench/hotpath.py [-n 20000] [-c 32] [--body bench/body.json] [--path /v1/chat/completions]
                            [--profile] [--top 40] [--budgets all|key] [--callgrind]
                            [--database-url URL | --postgres] [--pg-trips]

On PostgreSQL (``--postgres``: a fresh database on ``BENCH_PG_URL``, dropped afterwards) it also
prints the CPU per request of the database's server processes (``/proc``, when the server runs on
this machine), and with ``--pg-trips`` the round trips to PostgreSQL per request by statement,
counted on the wire (``bench/pg_trips.py``; the proxy's own CPU then counts in the process figure).

``bench/instructions.sh`` runs it under valgrind's callgrind and prints the instructions per request
of the timed requests only (deterministic within a few per mille, whatever the machine's load).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pg_trips  # bench/pg_trips.py
import procs  # bench/procs.py (this directory is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

CATALOG = """
providers:
  local: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench}}
  benchmock: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench, max_retries: 0}}
  benchanthropic:
    {{type: anthropic, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench, max_retries: 0}}
models:
  - id: bench/mock
    info: {{name: Bench mock, developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock, model: mock-model}}]
  - id: bench/claude
    info: {{name: Bench Anthropic mock, developer: bench, contextLength: 10000000, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchanthropic, model: mock-claude}}]
  - id: bench/gpt-big
    info: {{name: Bench OpenAI mock, developer: bench, contextLength: 10000000, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock, model: mock-model}}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


class Driver:
    def __init__(self, app: Any, path: str, body: bytes, key: str) -> None:
        self.app = app
        self.path = path
        self.body = body
        self.headers = [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"authorization", b"Bearer " + key.encode()),
            (b"anthropic-version", b"2023-06-01"),
            (b"content-length", str(len(body)).encode()),
        ]
        self.statuses: dict[int, int] = {}
        self.frames = 0

    async def one(self) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent = False
        done = asyncio.get_running_loop().create_future()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            await done
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] = self.statuses.get(message["status"], 0) + 1
            elif message.get("more_body"):
                self.frames += 1

        try:
            await self.app(scope, receive, send)
        finally:
            if not done.done():  # a cancelled disconnect watcher cancels it
                done.set_result(None)

    async def run(self, n: int, conns: int) -> None:
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await self.one()

        await asyncio.gather(*(worker() for _ in range(conns)))


async def _pg_backends(db_url: str) -> list[int]:
    """The server processes of the database (this query's own excluded)."""
    import asyncpg

    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (those not on this machine count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def drive(
    args: argparse.Namespace, key: str, body: bytes, trips: pg_trips.Trips | None = None
) -> dict[str, Any]:
    from modelgate.app import create_app_from_env

    app = create_app_from_env()
    async with app.router.lifespan_context(app):
        drv = Driver(app, args.path, body, key)
        await drv.run(min(2000, args.requests), args.conns)  # warm-up: caches, pools, the writer
        drv.statuses.clear()
        drv.frames = 0
        backends = await _pg_backends(args.database_url) if args.database_url else []
        db0 = _cpu_of(backends)
        trips0 = trips.snapshot() if trips is not None else None
        # Timed by the thread's CPU clock: a wall clock would charge a function for whatever other
        # process the scheduler ran meanwhile (a write to the mock wakes it, often on this core).
        prof = cProfile.Profile(time.thread_time) if args.profile else None
        if args.callgrind:
            _callgrind("on")
        t0, c0 = time.perf_counter(), time.process_time()
        if prof is not None:
            prof.enable()
        await drv.run(args.requests, args.conns)
        if prof is not None:
            prof.disable()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if args.callgrind:
            _callgrind("off")
        await asyncio.sleep(0.2)  # the last settles commit
        db_cpu = _cpu_of(backends) - db0
        trips1 = trips.snapshot() if trips is not None else None
    res = {
        "requests": args.requests,
        "conns": args.conns,
        "cpu_us_per_request": cpu / args.requests * 1e6,
        "wall_us_per_request": wall / args.requests * 1e6,
        "statuses": drv.statuses,
        "frames_per_request": drv.frames / args.requests,
    }
    if backends:
        res["pg_backends"] = len(backends)
        res["pg_cpu_us_per_request"] = db_cpu / args.requests * 1e6
    if trips0 is not None and trips1 is not None:
        per = {k: (trips1[k] - trips0[k]) / args.requests for k in trips1 if trips1[k] != trips0[k]}
        res["pg_round_trips_per_request"] = round(sum(per.values()), 3)
        res["pg_round_trips_by_statement"] = dict(sorted(per.items(), key=lambda kv: -kv[1]))
    if prof is not None:
        if args.profile_out:
            prof.dump_stats(args.profile_out)
        stats = pstats.Stats(prof)
        rows = []
        for (file, line, fn), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            rows.append((tt, ct, nc, f"{Path(file).name}:{line}({fn})"))
        total = sum(r[0] for r in rows)
        print(
            f"cProfile: {total / args.requests * 1e6:.0f} µs per request under the profiler", file=sys.stderr
        )
        print(f"{'self µs/req':>11} {'incl µs/req':>11} {'calls/req':>9}  function", file=sys.stderr)
        for tt, ct, nc, name in sorted(rows, reverse=True)[: args.top]:
            n = args.requests
            print(f"{tt / n * 1e6:11.1f} {ct / n * 1e6:11.1f} {nc / n:9.2f}  {name}", file=sys.stderr)
        calls = sum(r[2] for r in rows)
        res["python_calls_per_request"] = calls / args.requests
    return res


def _callgrind(state: str) -> None:
    """Switch callgrind's instrumentation of this process on or off (``--callgrind``)."""
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--requests", type=int, default=20000)
    ap.add_argument("-c", "--conns", type=int, default=32)
    ap.add_argument("--body", default=str(BENCH / "body.json"))
    ap.add_argument("--path", default="/v1/chat/completions")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--chunks", type=int, default=8, help="SSE chunks per streamed answer of the mock")
    ap.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions of the timed requests only: run under "
        "valgrind --tool=callgrind --instr-atstart=no (see bench/instructions.sh)",
    )
    ap.add_argument("--database-url", help="a PostgreSQL database to run on instead of a fresh SQLite file")
    ap.add_argument(
        "--postgres",
        action="store_true",
        help="run on a fresh PostgreSQL database made on BENCH_PG_URL (dropped afterwards)",
    )
    ap.add_argument(
        "--pg-trips",
        action="store_true",
        help="count the round trips to PostgreSQL per request, by statement (through a counting proxy)",
    )
    ap.add_argument("--profile-out", help="also write the cProfile stats to this file (pstats)")
    ap.add_argument(
        "--budgets",
        choices=["all", "key"],
        help="all: the key falls under budgets at every level (bench/nested_budgets.py: organisation, "
        "project, member and its own limit); key: its own limit only",
    )
    args = ap.parse_args()
    fresh = _fresh_database() if args.postgres else None
    if fresh is not None:
        args.database_url = fresh
    try:
        return _main(args)
    finally:
        if fresh is not None:
            _admin(f'DROP DATABASE IF EXISTS "{fresh.rsplit("/", 1)[1]}" WITH (FORCE)')


def _admin(sql: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def _fresh_database() -> str:
    name = f"mghotpath_{os.urandom(4).hex()}"
    _admin(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="modelgate-hotpath-"))
    port = free_port()
    mock = subprocess.Popen(
        [sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(port), "--chunks", str(args.chunks)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        (work / "catalog.yaml").write_text(CATALOG.format(port=port))
        db = args.database_url or f"sqlite:///{work}/modelgate.db"
        key = procs.create_key(db, "hp@example.com")
        trips = None
        served = db
        if args.pg_trips:
            if not args.database_url:
                raise SystemExit("--pg-trips needs PostgreSQL (--postgres or --database-url)")
            where = urlsplit(args.database_url)
            trips = pg_trips.Trips(where.hostname or "127.0.0.1", where.port or 5432)
            trips.start()
            served = trips.url(args.database_url)
        if args.budgets:
            budgets = [sys.executable, str(BENCH / "nested_budgets.py"), db, "hp@example.com", args.budgets]
            subprocess.run(budgets, check=True)
        os.environ.update(
            {
                "MODELGATE_CONFIG": str(work / "catalog.yaml"),
                "MODELGATE_DATABASE_URL": served,
                "MODELGATE_BOOTSTRAP": "false",
                "MODELGATE_LOG_LEVEL": "warning",
                # The pollers and sweeps run per interval, not per request: at their defaults (5-60 s)
                # a slow run (valgrind, a loaded host) would charge its requests for more of them.
                "MODELGATE_HOLD_SWEEP_INTERVAL": "3600",
                "MODELGATE_CATALOG_POLL_INTERVAL": "3600",
                "MODELGATE_SPEND_ALERT_INTERVAL": "3600",
                "MODELGATE_ALERT_INTERVAL": "3600",
            }
        )
        import uvloop

        res = uvloop.run(drive(args, key, Path(args.body).read_bytes().strip(), trips))
        print(json.dumps(res))
    finally:
        mock.terminate()
        mock.wait(5)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
