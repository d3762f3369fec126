"""A PostgreSQL failover under steady load, with leases on (issue #27, docs/deploy.md "Riding out a
database outage"): a primary and a streaming-replication standby from Debian's packages (run as the
``postgres`` user), the gateway reaching the primary through a ``ChaosProxy``. The test crashes the
primary (``pg_ctl stop -m immediate``) with the link cut, promotes the standby, and after 30 s points
the proxy at it (what a virtual IP or DNS switch does). Replication is synchronous and the ledger
commits synchronously (``MODELGATE_LEDGER_SYNCHRONOUS_COMMIT``): no acknowledged commit is lost in the
promotion. At most 1% of the requests fail, none waits longer than the stated bound, and the books
read on the promoted standby are exact, as in ``test_database_failover.py``.

Skipped where PostgreSQL's server binaries are not installed or the tests do not run as root."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelgate.app import build_app
from modelgate.settings import Settings
from tests.books import books
from tests.conftest import _create_schema, _free_port, _ServerThread
from tests.fakes.chaos_proxy import ChaosProxy
from tests.fakes.openai_server import FakeOpenAI
from tests.outages.conftest import outage_config, until
from tests.outages.test_database_failover import BOUND, SLOWEST, WORKERS, Load, _budget_books, _team

FOUND = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
BIN = FOUND or Path("/usr/lib/postgresql/missing/bin")
CUT = 30.0  # seconds between the crash of the primary and the proxy pointing at the standby


def _as_postgres(*argv: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)


class Pair:
    """A primary and its synchronous streaming standby in a temporary folder."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mg-replication-"))
        os.chmod(self.root, 0o755)
        shutil.chown(self.root, "postgres", "postgres")
        self.ports = {"primary": _free_port(), "standby": _free_port()}
        self.started: list[str] = []

    def setup(self) -> None:
        _as_postgres(str(BIN / "initdb"), "-D", str(self.root / "primary"), "-A", "trust", "-U", "postgres")
        with open(self.root / "primary" / "postgresql.conf", "a") as conf:
            conf.write("fsync = off\nfull_page_writes = off\n")
        self.start("primary")
        _as_postgres(str(BIN / "psql"), *self._where("primary"), "-c", "CREATE DATABASE modelgate")
        _as_postgres(
            str(BIN / "pg_basebackup"),
            *self._where("primary"),
            "-D",
            str(self.root / "standby"),
            "-R",
            "-X",
            "stream",
        )
        self.start("standby")
        # Synchronous from here on (before the standby existed, a commit would wait for it forever).
        for sql in ("ALTER SYSTEM SET synchronous_standby_names = '*'", "SELECT pg_reload_conf()"):
            _as_postgres(str(BIN / "psql"), *self._where("primary"), "-c", sql)

    def _where(self, name: str) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.ports[name]), "-U", "postgres"]

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports[name]}/modelgate"

    def start(self, name: str) -> None:
        for attempt in range(3):  # a free port can be taken by another process before we bind it
            where = (
                f"-p {self.ports[name]} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            )
            log = str(self.root / f"{name}.log")
            try:
                _as_postgres(
                    str(BIN / "pg_ctl"), "-D", str(self.root / name), "-o", where, "-l", log, "-w", "start"
                )
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                self.ports[name] = _free_port()
                continue
            self.started.append(name)
            return

    def crash(self, name: str) -> None:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.root / name), "-m", "immediate", "-w", "stop")
        self.started.remove(name)

    def promote(self, name: str) -> None:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.root / name), "-w", "promote")

    def close(self) -> None:
        for name in list(self.started):
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    str(BIN / "pg_ctl"),
                    "-D",
                    str(self.root / name),
                    "-m",
                    "fast",
                    "stop",
                ],
                capture_output=True,
                timeout=120,
            )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def pair() -> Iterator[Pair]:
    if FOUND is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL server binaries and root (to run them as postgres) are needed")
    made = Pair()
    try:
        made.setup()
        yield made
    finally:
        made.close()


@pytest.mark.postgres
def test_failover_to_a_promoted_standby_under_load(
    pair: Pair, openai_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    primary = pair.url("primary")
    asyncio.run(_create_schema(primary))
    org, solo_key, team_key = asyncio.run(_team(primary))
    proxy = ChaosProxy(pair.ports["primary"])
    config = tmp_path / "modelgate.yaml"
    config.write_text(outage_config(openai_upstream))
    settings = Settings(
        database_url=f"postgresql://postgres@127.0.0.1:{proxy.port}/modelgate",
        config=config,
        bootstrap=False,
        database_timeout=BOUND,
        key_cache_ttl=20,
        rate_limit_rpm=0,
        rate_limit_tpm=0,
        lease_seconds=90,
        lease_fraction=0.5,
        outage_journal=tmp_path / "journal",
        ledger_synchronous_commit=True,
    )
    app = build_app(settings)
    thread = _ServerThread(app, settings=settings)
    thread.start()
    load = Load(f"http://127.0.0.1:{thread.server.config.port}", [solo_key, team_key])
    try:
        keeper = app.state.mg.core.ledger.leases
        load.start(WORKERS)
        seen: dict[int, tuple[str, float]] = {}

        def settled_leases() -> bool:
            now = time.monotonic()
            current = {k: lease.id for k, lease in list(keeper.book.leases.items())}
            for k, lid in current.items():
                if seen.get(k, ("", 0.0))[0] != lid:
                    seen[k] = (lid, now)
            return len(current) == 2 and all(now - seen[k][1] > 6 for k in current)

        until(settled_leases, "a steady lease on each key", within=120)
        before = len(load.results)
        proxy.kill()
        pair.crash("primary")
        pair.promote("standby")
        time.sleep(CUT)  # the switch-over itself: a fixed length by design, not a wait for an event
        proxy.target = ("127.0.0.1", pair.ports["standby"])
        proxy.restore()
        during = len(load.results) - before
        after = len(load.results)
        until(lambda: len(load.results) > after + 40, "requests served by the promoted standby", within=120)
        load.finish()
        until(lambda: keeper.journal.unapplied == 0, "the outage journal applied", within=120)
    finally:
        load.finish()
        thread.stop()
        proxy.close()

    assert during > 50, during
    failed = [r for r in load.results if r[0] != 200]
    assert len(failed) <= 0.01 * len(load.results), (len(failed), len(load.results), failed[:10])
    slowest = max(seconds for _, seconds, _ in load.results)
    assert slowest <= SLOWEST, slowest

    standby = pair.url("standby")
    ids = {iid for _, _, iid in load.results if iid}
    solo, team = books(standby, email="solo@example.com"), books(standby, account_id=org)
    assert ids <= set(solo.statuses) | set(team.statuses)
    for b in (solo, team):
        b.assert_exact()  # charged == logged per request, balance == top-ups - charged, nothing held
        assert b.charged > 0 and b.leased == 0  # the stopped instance returned its leases
    *buckets, (team_charged, _, _) = asyncio.run(_budget_books(standby, org))
    assert len(buckets) == 2, buckets
    for spent, held, limit in buckets:
        assert spent == team_charged and held == 0, (spent, held, team_charged)
        assert spent <= limit
