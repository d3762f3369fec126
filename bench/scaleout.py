"""Scale-out figures, in the same run as the embedded (SQLite) column of bench/run.py:

- **PostgreSQL + Redis**, one worker: requests/s at ``conns`` connections, latency at 1 connection,
  and 200 connections for ``BENCH_STRESS_SECONDS`` (errors, p99), beside the SQLite figures;
- **two instances** on PostgreSQL + Redis, one shared hot account: requests/s with the load split
  between them;
- **the balance boundary** with two instances: an account with credits for a few thousand requests
  is driven past its balance through both; then overspend, open holds and ledger == logs == balance
  delta are read from the database.

Targets (issue 15) are judged as ratios to the SQLite column of the same run, never as absolute
figures: the machine is shared and its speed moves between minutes.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procs  # bench/procs.py (this directory is on sys.path)

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
STRESS_SECONDS = float(os.environ.get("BENCH_STRESS_SECONDS", "30"))
STRESS_CONNS = 200
WRK = shutil.which("wrk")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Tools:
    """What bench/run.py lends this module."""

    process: Callable[..., Any]
    measure: Callable[..., dict[str, Any]]
    loadgen: Callable[..., dict[str, float]]
    free_port: Callable[[], int]
    log: Callable[[str], None]
    modelgate: str  # the modelgate executable
    tmp: Path
    catalog: Path
    body: Path
    conns: int
    duration: float


def wrk_run(
    url: str, *, conns: int, seconds: float, key: str, body: Path, latency: bool = True
) -> dict[str, float]:
    """wrk with every error counted: non-2xx answers and socket errors (connect, read, write,
    time-outs at wrk's 2 s)."""
    if WRK is None:
        raise RuntimeError("wrk is needed for the scale-out figures (apt-get install -y wrk)")
    cmd = [WRK, "-t1" if conns < 64 else "-t2", f"-c{conns}", f"-d{max(1, int(seconds))}s"]
    cmd += ["--latency"] if latency else []
    cmd += ["-s", str(ROOT / "bench" / "post.lua"), url]
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_KEY": key}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    res: dict[str, float] = {"rps": float(_find(r"Requests/sec:\s+([\d.]+)", out) or 0)}
    res["requests"] = float(_find(r"(\d+) requests in", out) or 0)
    res["non2xx"] = float(_find(r"Non-2xx or 3xx responses:\s+(\d+)", out) or 0)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = float(sum(int(g) for g in sock.groups())) if sock else 0.0
    res["timeouts"] = float(sock.group(4)) if sock else 0.0
    res["errors"] = res["non2xx"] + res["socket_errors"]
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
        if m:
            v = float(m.group(1))
            res[f"p{pct}_ms"] = v / 1000 if m.group(2) == "us" else (v * 1000 if m.group(2) == "s" else v)
    return res


def _find(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1) if m else None


def stress(url: str, key: str, body: Path) -> dict[str, float]:
    return wrk_run(url, conns=STRESS_CONNS, seconds=STRESS_SECONDS, key=key, body=body)


# ---- CPU time per request: the steadier figure on a shared machine ----------------------------


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its direct children."""
    return sum(map(_cpu, _tree(pid)))


def cpu_per_request(
    url: str, key: str, body: Path, *, pid: int, seconds: float, conns: int, db_url: str | None = None
) -> dict[str, dict[str, float]]:
    """Microseconds of CPU per request of the gateway process and of its PostgreSQL backends (when
    PostgreSQL runs on this machine), at ``conns`` connections and at 1."""
    out: dict[str, dict[str, float]] = {}
    for label, n in ((f"c{conns}", conns), ("c1", 1)):
        backends = _backends(db_url) if db_url else []
        gw, db = _tree(pid), backends
        g0, d0 = sum(map(_cpu, gw)), sum(map(_cpu, db))
        res = wrk_run(url, conns=n, seconds=seconds, key=key, body=body, latency=False)
        g1, d1 = sum(map(_cpu, gw)), sum(map(_cpu, db))
        done = max(1.0, res["requests"])
        out[label] = {"gateway_us": (g1 - g0) / done * 1e6, "db_us": (d1 - d0) / done * 1e6}
    return out


def _backends(db_url: str) -> list[int]:
    name = db_url.rsplit("/", 1)[1].split("?", 1)[0]
    try:
        rows = _pg(f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}'")
    except Exception:
        return []
    return [int(r[0]) for r in rows if Path(f"/proc/{int(r[0])}").exists()]


# ---- PostgreSQL ----------------------------------------------------------------------------------


def _pg(sql: str, url: str = PG_ADMIN_URL) -> Any:
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def pg_available() -> bool:
    try:
        _pg("SELECT 1")
    except Exception:
        return False
    return True


def create_key(t: Tools, db_url: str, email: str, usd: float) -> str:
    return procs.create_key(db_url, email, usd=repr(usd), cli=(t.modelgate,))


def books(db_url: str, email: str) -> dict[str, int]:
    """Money of one account: the ledger, the logs and the balance, read from the database."""
    rows = _pg(
        "SELECT a.balance_credits,"
        " (SELECT coalesce(sum(credits), 0) FROM ledger WHERE account_id = a.id AND kind <> 'charge'),"
        " (SELECT coalesce(-sum(credits), 0) FROM ledger WHERE account_id = a.id AND kind = 'charge'),"
        " (SELECT count(*) FROM ledger WHERE account_id = a.id AND kind = 'charge'),"
        " (SELECT coalesce(sum(credits), 0) FROM request_logs WHERE account_id = a.id),"
        " (SELECT count(*) FROM holds WHERE account_id = a.id)"
        f" FROM accounts a WHERE a.email = '{email}'",
        db_url,
    )
    balance, topups, charged, charges, logged, holds = (int(v) for v in rows[0])
    return {
        "initial": topups,
        "balance": balance,
        "charged": charged,
        "charges": charges,
        "logged": logged,
        "open_holds": holds,
        "overspend": max(0, charged - topups),
    }


def run(t: Tools) -> dict[str, Any] | None:
    """The PostgreSQL + Redis column, the two-instance column and the boundary check."""
    if not pg_available():
        t.log(f"PostgreSQL not reachable at {PG_ADMIN_URL}: skipping the scale-out columns (BENCH_PG_URL)")
        return None
    name = f"mgbench_{secrets.token_hex(4)}"
    _pg(f'CREATE DATABASE "{name}"')
    db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        return _run(t, db_url)
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(db_url: str, catalog: Path) -> dict[str, str]:
    return {
        "MODELGATE_CONFIG": str(catalog),
        "MODELGATE_DATABASE_URL": db_url,
        "MODELGATE_REDIS_URL": REDIS_URL,
        "MODELGATE_REDIS_PREFIX": f"mgbench:{secrets.token_hex(4)}:",
        "MODELGATE_BOOTSTRAP": "false",
        "MODELGATE_LOG_LEVEL": "warning",
    }


def _run(t: Tools, db_url: str) -> dict[str, Any]:
    key = create_key(t, db_url, "bench@example.com", 1e9)  # also migrates the new database
    env = _env(db_url, t.catalog)
    out: dict[str, Any] = {"conns": t.conns}
    ports = [t.free_port(), t.free_port()]
    urls = [f"http://127.0.0.1:{p}/v1/chat/completions" for p in ports]

    def serve(i: int) -> Any:
        cmd = [t.modelgate, "serve", "--port", str(ports[i])]
        return t.process(cmd, port=ports[i], env=env, logfile=t.tmp / f"modelgate-pg-{i}.log")

    with serve(0) as proc:
        res = t.measure("PostgreSQL + Redis (workers=1)", urls[0], key, proc.pid, rss_n=0)
        t.log("PostgreSQL + Redis: CPU time per request")
        res["cpu"] = cpu_per_request(
            urls[0], key, t.body, pid=proc.pid, seconds=t.duration, conns=t.conns, db_url=db_url
        )
        t.log(f"PostgreSQL + Redis: {STRESS_CONNS} connections for {STRESS_SECONDS:g}s")
        res["stress"] = stress(urls[0], key, t.body)
        out["pg"] = res
    with serve(0), serve(1):
        t.log("two instances on PostgreSQL + Redis, one hot account: throughput")
        for url in urls:
            t.loadgen(url, conns=8, key=key, body=t.body, requests=1000, warmup=0)
        out["two"] = {"throughput": _split_load(urls, key, t)}
        t.log("two instances: driven past one account's balance")
        out["boundary"] = _boundary(t, db_url, urls)
    out["ledger"] = books(db_url, "bench@example.com")
    return out


def _split_load(urls: list[str], key: str, t: Tools) -> dict[str, float]:
    """``conns`` connections split over the instances, measured at the same time."""
    from concurrent.futures import ThreadPoolExecutor

    each = max(1, t.conns // len(urls))
    with ThreadPoolExecutor(len(urls)) as pool:
        parts = list(
            pool.map(
                lambda u: wrk_run(u, conns=each, seconds=t.duration, key=key, body=t.body, latency=False),
                urls,
            )
        )
    return {k: sum(p[k] for p in parts) for k in ("rps", "requests", "errors", "non2xx", "socket_errors")}


def _boundary(t: Tools, db_url: str, urls: list[str]) -> dict[str, Any]:
    """Credits for about 500 charged requests (48 credits each on the mock's usage), then
    ``conns`` connections on each instance, long enough to exhaust the balance many times over."""
    email = "boundary@example.com"
    key = create_key(t, db_url, email, 0.012)  # 24,000 credits
    from concurrent.futures import ThreadPoolExecutor

    seconds = max(3.0, t.duration / 2)
    with ThreadPoolExecutor(len(urls)) as pool:
        parts = list(
            pool.map(
                lambda u: wrk_run(u, conns=t.conns, seconds=seconds, key=key, body=t.body, latency=False),
                urls,
            )
        )
    served = sum(p["requests"] - p["non2xx"] for p in parts)
    refused = sum(p["non2xx"] for p in parts)
    result: dict[str, Any] = books(db_url, email)
    result.update(
        served=int(served), refused=int(refused), socket_errors=int(sum(p["socket_errors"] for p in parts))
    )
    return result


# ---- the table -------------------------------------------------------------------------------


def rows(
    mock: dict[str, Any], sqlite: dict[str, Any], scale: dict[str, Any] | None, fmt: Callable[..., str]
) -> str:
    if scale is None:
        return "\nScale-out columns skipped (no PostgreSQL reachable).\n"
    pg, two, edge = scale["pg"], scale["two"], scale["boundary"]
    lat0 = mock["latency"]

    def added(r: dict[str, Any], p: str) -> float:
        return float(r["latency"].get(p, float("nan")) - lat0.get(p, float("nan")))

    s_rps, p_rps, t_rps = sqlite["throughput"]["rps"], pg["throughput"]["rps"], two["throughput"]["rps"]
    s_st, p_st = sqlite["stress"], pg["stress"]
    st_ratio = p_st.get("p99_ms", float("nan")) / s_st.get("p99_ms", float("nan"))
    many = f"c{scale['conns']}"
    lines = [
        "\n**Scale-out** (same run; targets judged as ratios to the SQLite column):\n\n",
        "| figure | SQLite (workers=1) | PostgreSQL + Redis (workers=1) "
        "| PostgreSQL + Redis, 2 instances |\n",
        "|---|---|---|---|\n",
        f"| requests/s at {scale['conns']} connections (one hot account) | {fmt(s_rps, 0)} | "
        f"{fmt(p_rps, 0)} (x{p_rps / s_rps:.2f}) | {fmt(t_rps, 0)} (x{t_rps / s_rps:.2f}) |\n",
        f"| errors during that | {fmt(int(sqlite['throughput'].get('errors', 0)))} | "
        f"{fmt(int(pg['throughput'].get('errors', 0)))} | {fmt(int(two['throughput']['errors']))} |\n",
        f"| **added** latency p50 / p99 at 1 connection (ms) | {added(sqlite, 'p50_ms'):.3f} / "
        f"{added(sqlite, 'p99_ms'):.3f} | {added(pg, 'p50_ms'):.3f} / {added(pg, 'p99_ms'):.3f} | — |\n",
        f"| {STRESS_CONNS} connections for {STRESS_SECONDS:g} s: requests/s | {fmt(s_st['rps'], 0)} | "
        f"{fmt(p_st['rps'], 0)} | — |\n",
        f"| … non-2xx answers / socket errors (of which client time-outs at 2 s) | {_errs(s_st)} | "
        f"{_errs(p_st)} | — |\n",
        f"| … latency p99 (ms) | {fmt(s_st.get('p99_ms'), 1)} | {fmt(p_st.get('p99_ms'), 1)} "
        f"(x{st_ratio:.2f}) | — |\n",
        f"| CPU per request at {scale['conns']} connections, gateway + database (µs) | "
        f"{_cpu_cell(sqlite, many)} | {_cpu_cell(pg, many)} | — |\n",
        f"| CPU per request at 1 connection, gateway + database (µs) | {_cpu_cell(sqlite, 'c1')} | "
        f"{_cpu_cell(pg, 'c1')} | — |\n",
        f"| balance boundary: requests served / refused (403) | — | — | {fmt(edge['served'])} / "
        f"{fmt(edge['refused'])} |\n",
        f"| … credited / charged / logged / balance left (credits) | — | — | {fmt(edge['initial'])} / "
        f"{fmt(edge['charged'])} / {fmt(edge['logged'])} / {fmt(edge['balance'])} |\n",
        f"| … overspend, open holds, charges - served | — | — | {edge['overspend']}, {edge['open_holds']}, "
        f"{edge['charges'] - edge['served']} |\n",
    ]
    return "".join(lines) + "\n" + _targets(sqlite, pg, two, edge, added) + "\n"


def _errs(r: dict[str, float]) -> str:
    return f"{r['non2xx']:.0f} / {r['socket_errors']:.0f} ({r.get('timeouts', 0):.0f})"


def _cpu_cell(col: dict[str, Any], label: str) -> str:
    cpu = (col.get("cpu") or {}).get(label)
    if not cpu:
        return "n/a"
    return f"{cpu['gateway_us']:.0f} + {cpu['db_us']:.0f}"


def _targets(
    sqlite: dict[str, Any], pg: dict[str, Any], two: dict[str, Any], edge: dict[str, Any], added: Any
) -> str:
    ratio = pg["throughput"]["rps"] / sqlite["throughput"]["rps"]
    p50, p99 = added(pg, "p50_ms"), added(pg, "p99_ms")
    st_ratio = pg["stress"].get("p99_ms", float("inf")) / sqlite["stress"].get("p99_ms", float("nan"))
    exact = (
        edge["refused"] > 0  # the boundary was reached
        and edge["overspend"] == 0
        and edge["open_holds"] == 0
        and edge["charged"] == edge["logged"] == edge["initial"] - edge["balance"]
        and edge["charges"] == edge["served"]
    )

    def status(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    return (
        f"- PostgreSQL ≥ 0.8x SQLite req/s at 32 connections: x{ratio:.2f}, {status(ratio >= 0.8)}\n"
        f"- PostgreSQL added latency at 1 connection p50 ≤ 1 ms: {p50:.3f} ms, {status(p50 <= 1.0)}; "
        f"p99 ≤ 5 ms: {p99:.3f} ms, {status(p99 <= 5.0)} (SQLite in the same run: "
        f"{added(sqlite, 'p50_ms'):.3f} / {added(sqlite, 'p99_ms'):.3f} ms)\n"
        f"- {STRESS_CONNS} connections x {STRESS_SECONDS:g} s on PostgreSQL: "
        f"{int(pg['stress']['errors'])} errors (SQLite in the same run: {int(sqlite['stress']['errors'])}), "
        f"p99 x{st_ratio:.2f} SQLite's, {status(pg['stress']['errors'] == 0 and st_ratio <= 2.0)}\n"
        f"- two instances at the balance boundary: overspend {edge['overspend']}, ledger == logs == balance "
        f"delta {'yes' if exact else 'NO'}, {status(exact)}\n"
        f"- two instances: x{two['throughput']['rps'] / pg['throughput']['rps']:.2f} one instance's req/s "
        "(for information: the two processes share the same 2 cores)\n"
    )
