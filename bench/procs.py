"""Process helpers shared by the benchmarks (bench/run.py, bench/ab.py): free ports, starting a
server and waiting until it listens, stopping its whole process group, and reading the CPU time and
RSS of a process tree from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def create_key(
    db_url: str,
    email: str,
    *,
    usd: str = "1000000000",
    cli: tuple[str, ...] = (sys.executable, "-m", "modelgate.cli"),
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> str:
    """A new key with ``usd`` of credits, made by ``modelgate admin create-key`` (its last line)."""
    argv = [*cli, "admin", "create-key", "--email", email, "--credits-usd", usd, "--database-url", db_url]
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def process(
    cmd: list[str],
    *,
    port: int,
    logfile: Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 120.0,
    inherit_env: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` in its own session until it listens on ``port``; on exit SIGINT its process
    group, then SIGKILL after 15 s. ``env`` goes on top of this process's environment, or replaces
    it with ``inherit_env=False``."""
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **(env or {})} if inherit_env else env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
        try:
            wait_port(port, proc, timeout)
            yield proc
        finally:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def tree_pids(pid: int) -> set[int]:
    """A process and all its living descendants."""
    pids = {pid}
    changed = True
    while changed:
        changed = False
        for p in Path("/proc").iterdir():
            if not p.name.isdigit() or int(p.name) in pids:
                continue
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid in pids:
                pids.add(int(p.name))
                changed = True
    return pids


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its living descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in tree_pids(pid):
        with suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, in MB."""
    total = 0
    for p in tree_pids(pid):
        with suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024
