"""Budget contention across instances (issue 23): one project's keys, under budgets at every level
(organisation, project, member, each key's own limit), driven from two instances on PostgreSQL +
Redis at 64 connections in all, against an unlimited key in the same run; then the books.

    python bench/budget_contention.py        # BENCH_PG_URL, BENCH_REDIS_URL, CONTENTION_ROUNDS (3),
                                             # CONTENTION_SECONDS (8) per figure

Rounds alternate (unlimited, budgeted), (budgeted, unlimited), ... so that the shared machine's drift
falls on both alike. Printed: requests/s of each per round and the budgeted/unlimited ratio (the
target: within 20 %, i.e. >= 0.8), and whether the budgeted account's books are exact: charged ==
logged == the project's, organisation's and member's budget spend == the sum of the keys' spend,
nothing held. JSON in bench/results/contention-<time>.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import procs  # bench/procs.py (this directory is on sys.path)
from scaleout import PG_ADMIN_URL, REDIS_URL, _pg, wrk_run

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
ROUNDS = int(os.environ.get("CONTENTION_ROUNDS", "3"))
SECONDS = float(os.environ.get("CONTENTION_SECONDS", "8"))
CONNS = 64  # in all, half on each instance
PY = sys.executable
CATALOG = """
providers:
  benchmock: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-bench, max_retries: 0}}
models:
  - id: bench/mock
    info: {{name: Bench mock, developer: bench, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes: [{{provider: benchmock, model: mock-model}}]
"""


def log(msg: str) -> None:
    print(f"[contention] {msg}", file=sys.stderr, flush=True)


def drive(urls: list[str], keys: list[str], body: Path) -> float:
    """requests/s with each instance driven by its own key at CONNS/2 connections, at once."""
    with ThreadPoolExecutor(len(urls)) as pool:
        runs = list(
            pool.map(
                lambda uk: wrk_run(
                    uk[0], conns=CONNS // 2, seconds=SECONDS, key=uk[1], body=body, latency=False
                ),
                zip(urls, keys, strict=True),
            )
        )
    errors = sum(r["errors"] for r in runs)
    if errors:
        log(f"{errors:g} errors (non-2xx or socket) in this figure")
    return sum(r["rps"] for r in runs)


async def _books(db_url: str, email: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from modelgate.accounts.service import get_or_create_account
    from modelgate.store.budgets import bucket_spend, list_budgets
    from modelgate.store.db import Database
    from modelgate.store.ledger import period_key
    from modelgate.store.schema import Hold, KeySpend, LedgerEntry, RequestLog

    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:
            org = await get_or_create_account(conn, email=email)
            charged = (
                await conn.execute(
                    select(func.coalesce(-func.sum(LedgerEntry.credits), 0)).where(
                        LedgerEntry.account_id == org, LedgerEntry.kind == "charge"
                    )
                )
            ).scalar_one()
            logged = (
                await conn.execute(
                    select(func.coalesce(func.sum(RequestLog.credits), 0)).where(RequestLog.account_id == org)
                )
            ).scalar_one()
            held = (
                await conn.execute(select(func.count()).select_from(Hold).where(Hold.account_id == org))
            ).scalar_one()
            levels = {}
            for b in await list_budgets(conn, org_id=org, bucket=period_key):
                levels[b.level] = await bucket_spend(conn, budget_id=b.id, period=period_key(b.period))
            keys = (
                await conn.execute(select(func.coalesce(func.sum(KeySpend.spent_credits), 0)))
            ).scalar_one()
    finally:
        await db.aclose()
    return {
        "charged": int(charged),
        "logged": int(logged),
        "holds": int(held),
        "levels": levels,
        "keys": int(keys),
    }


def main() -> int:
    name = f"mgbench_{secrets.token_hex(4)}"
    _pg(f'CREATE DATABASE "{name}"')
    db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    work = Path(tempfile.mkdtemp(prefix="modelgate-contention-"))
    try:
        return _run(db_url, work)
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(db_url: str, work: Path) -> int:
    cli = (PY, "-m", "modelgate.cli")
    unlimited = procs.create_key(db_url, "unlimited@example.com", cli=cli)
    budgeted = [procs.create_key(db_url, "team@example.com", cli=cli) for _ in range(2)]  # one project
    subprocess.run([PY, str(BENCH / "nested_budgets.py"), db_url, "team@example.com"], check=True)
    body = BENCH / "body.json"
    mock_port, ports = procs.free_port(), [procs.free_port(), procs.free_port()]
    (work / "catalog.yaml").write_text(CATALOG.format(port=mock_port))
    env = {
        "MODELGATE_CONFIG": str(work / "catalog.yaml"),
        "MODELGATE_DATABASE_URL": db_url,
        "MODELGATE_REDIS_URL": REDIS_URL,
        "MODELGATE_REDIS_PREFIX": f"mgbench:{secrets.token_hex(4)}:",
        "MODELGATE_BOOTSTRAP": "false",
        "MODELGATE_LOG_LEVEL": "warning",
    }
    samples: dict[str, list[float]] = {"unlimited": [], "budgeted": [], "ratio": []}
    with ExitStack() as stack:
        mock = [PY, str(BENCH / "mock_upstream.py"), "--port", str(mock_port)]
        stack.enter_context(procs.process(mock, port=mock_port, logfile=work / "mock.log"))
        for i, port in enumerate(ports):
            cmd = [*cli, "serve", "--port", str(port), "--workers", "1"]
            stack.enter_context(procs.process(cmd, port=port, env=env, logfile=work / f"gw-{i}.log"))
        urls = [f"http://127.0.0.1:{p}/v1/chat/completions" for p in ports]
        drive(urls, [unlimited, unlimited], body)  # warm-up
        drive(urls, budgeted, body)
        for r in range(ROUNDS):
            order = ["unlimited", "budgeted"] if r % 2 == 0 else ["budgeted", "unlimited"]
            got = {}
            for which in order:
                log(f"round {r + 1}/{ROUNDS}: {which}")
                got[which] = drive(urls, [unlimited, unlimited] if which == "unlimited" else budgeted, body)
                samples[which].append(got[which])
            samples["ratio"].append(got["budgeted"] / got["unlimited"])
        time.sleep(1.0)  # the last settles
        books = asyncio.run(_books(db_url, "team@example.com"))
    exact = (
        books["holds"] == 0
        and books["charged"] == books["logged"] == books["keys"]
        and all(v == (books["charged"], 0) for v in books["levels"].values())
        and len(books["levels"]) == 3
    )
    med = {k: statistics.median(v) for k, v in samples.items()}
    out = {
        "samples": samples,
        "median": med,
        "books": {**books, "exact": exact},
        "conns": CONNS,
        "seconds": SECONDS,
    }
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / f"contention-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        json.dumps(out, indent=2, default=str)
    )
    u, b = samples["unlimited"], samples["budgeted"]
    print(
        f"two instances, {CONNS} connections in all, {ROUNDS} rounds of {SECONDS:g}s:\n"
        f"- unlimited key: {med['unlimited']:.0f} req/s [{min(u):.0f}-{max(u):.0f}]\n"
        f"- one project's keys under organisation + project + member budgets + key limits: "
        f"{med['budgeted']:.0f} req/s [{min(b):.0f}-{max(b):.0f}]\n"
        f"- budgeted / unlimited (same round): x{med['ratio']:.2f} "
        f"[{min(samples['ratio']):.2f}-{max(samples['ratio']):.2f}] (target >= 0.80: "
        f"{'met' if med['ratio'] >= 0.8 else 'missed'})\n"
        f"- books: charged {books['charged']} == logged {books['logged']} == keys {books['keys']}, levels "
        f"{books['levels']}, holds {books['holds']}: {'exact' if exact else 'NOT EXACT'}"
    )
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
