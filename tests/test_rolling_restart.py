"""A rolling restart under streaming load: two ``modelgate serve`` processes on one PostgreSQL database
behind nginx (from Debian's packages: ``make browser`` installs it), while streams run through nginx
all the time, instance 1 is sent SIGTERM, started again, then instance 2 (docs/deploy.md, "Draining
and rolling restarts").

Every stream must end with its finish and ``[DONE]`` (a draining instance finishes its streams and
nginx sends new requests to the other one), and the books must be exact: what was charged is what
was logged and what left the balance, with no hold left.

Before drain.py, SIGTERM gave streams in flight 5 s (``MODELGATE_SHUTDOWN_TIMEOUT``) and cut them."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.books import books
from tests.conftest import MOCK_CONFIG, _free_port
from tests.served import LONG, SAFETY, WORDS, Instance, Load, PacedUpstream, account

STREAMS = 240  # streams completed over the test (at least; most of them overlap a restart)
CONCURRENCY = 12


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.skip("nginx is not installed (make browser installs it from Debian's packages)")
    return found


def _nginx_conf(tmp: Path, port: int, upstreams: list[int]) -> Path:
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=0;\n" for p in upstreams)
    temp = "".join(
        f"  {k}_temp_path {tmp}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\ndaemon off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/nginx-error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n  access_log off;\n"
        + temp
        + "  upstream modelgate {\n"
        + servers
        + "    keepalive 32;\n  }\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n" + LOCATION + "  }\n}\n"
    )
    return conf


# The location block of docs/deploy.md's example.
LOCATION = """    location / {
      proxy_pass http://modelgate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 900s;
      proxy_next_upstream error timeout non_idempotent;
      proxy_next_upstream_tries 3;
    }
"""


def test_rolling_restart_under_streaming_load_breaks_no_stream_and_loses_no_charge(
    tmp_path: Path, pg_database: str
) -> None:
    nginx = _nginx()
    upstream = PacedUpstream().serve_in_thread()
    config = tmp_path / "modelgate.yaml"
    config.write_text(MOCK_CONFIG.format(base_url=upstream.base_url))
    key, account_id, credits_before = asyncio.run(account(pg_database))
    ports = [_free_port(), _free_port()]
    instances = [Instance(tmp_path, p, config, pg_database, f"instance{i + 1}") for i, p in enumerate(ports)]
    proxy_port = _free_port()
    proxy: subprocess.Popen[bytes] | None = None
    load: Load | None = None
    turns: list[Load] = []
    try:
        for instance in instances:
            instance.start()
        proxy = subprocess.Popen([nginx, "-c", str(_nginx_conf(tmp_path, proxy_port, ports))])
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        deadline = time.monotonic() + SAFETY
        while True:
            try:
                if requests.get(f"{proxy_url}/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and proxy.poll() is None, "nginx did not start"
            time.sleep(0.1)
        load = Load(proxy_url, key, CONCURRENCY)
        for t in load.threads:
            t.start()
        load.wait_for(STREAMS // 6)
        for instance in instances:  # instance 1, then instance 2
            # An agent's turn on the instance about to stop, longer than the old 5 s: it must finish.
            turn = Load(f"http://127.0.0.1:{instance.port}", key)
            turns.append(turn)
            result: list[str | None] = []
            thread = threading.Thread(
                target=lambda t=turn, r=result: r.append(t.one(requests.Session(), prompt=LONG + " " + WORDS))
            )
            thread.start()
            assert turn.started.wait(SAFETY)
            assert instance.stop() in (0, -signal.SIGTERM), instance.log()
            thread.join(SAFETY)
            assert result == [None], result
            assert "drained" in instance.log(), instance.log()
            instance.start()
            load.wait_for(load.completed + STREAMS // 6)
        load.wait_for(STREAMS)
    finally:
        if load is not None:
            load.stop.set()
            for t in load.threads:
                t.join(SAFETY)
        for instance in instances:
            if instance.proc is not None and instance.proc.poll() is None:
                instance.proc.send_signal(signal.SIGTERM)
                instance.proc.wait(SAFETY)
        if proxy is not None:
            proxy.terminate()
            proxy.wait(30)
        upstream.stop_thread()
    assert load.broken == [], load.broken[:5]
    assert load.completed >= STREAMS
    b = books(pg_database, account_id=account_id)
    assert b.holds == 0, "a hold was left open"
    assert b.log_rows == load.completed + len(turns), (b.log_rows, load.completed, len(turns))
    assert b.charged == b.logged_total == credits_before - b.balance, b
    assert b.charged > 0
