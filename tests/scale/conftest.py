"""Several modelgate instances (threads, each its own app and event loop) sharing one real
PostgreSQL database and one real Redis, with a Redis key prefix unique to the test."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelgate.app import build_app
from modelgate.settings import Settings
from tests.conftest import (
    MOCK_CONFIG,
    REDIS_URL,
    LiveServer,
    _create_schema,
    _free_port,
    _ServerThread,
    _truncate_pg,
)
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def cluster(
    pg_database: str, openai_upstream: FakeOpenAI, tmp_path: Path, redis_prefix: str
) -> Iterator[Callable[..., list[LiveServer]]]:
    threads: list[_ServerThread] = []
    config = tmp_path / "modelgate.yaml"
    config.write_text(MOCK_CONFIG.format(base_url=openai_upstream.base_url) + LOCAL_OFF)
    asyncio.run(_create_schema(pg_database))

    def start(n: int = 2, **kw: Any) -> list[LiveServer]:
        out = []
        for _ in range(n):
            settings = Settings(
                database_url=pg_database,
                config=config,
                bootstrap=False,
                log_flush_interval=0.05,
                redis_url=REDIS_URL,
                redis_prefix=redis_prefix,
                # These instances share one process (one GIL) on a loaded test machine, and these
                # tests are about exact sharing, not outages: a generous bound keeps a slow call
                # from counting as an unreachable Redis (tests/outages/ covers that).
                redis_timeout=5.0,
                **kw,
            )
            app = build_app(settings)
            t = _ServerThread(app)
            t.start()
            threads.append(t)
            out.append(LiveServer(url=f"http://127.0.0.1:{t.server.config.port}", settings=settings, app=app))
        return out

    yield start
    for t in threads:
        t.stop()
    _truncate_pg(pg_database)


# Each instance would otherwise load the embedded model; these tests never call it.
LOCAL_OFF = """
  - id: local/smollm2-135m-instruct
    aliases: [smollm2, smollm2-135m-instruct]
    info: {name: Local (disabled in tests), developer: test}
    pricing: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
    routes:
      - {provider: mock, model: mock-model}
"""


@dataclass
class Instance:
    """A modelgate server in its own process (so that it can be killed with SIGKILL)."""

    url: str
    proc: subprocess.Popen[bytes]

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()  # reaped: its locks (advisory, flock) are dropped by now or very soon


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Instance]]:
    """``spawn(database_url=..., config=..., **settings)``: ``modelgate serve`` as a subprocess."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*, database_url: str, config: Path, **settings: Any) -> Instance:
        port = _free_port()
        env = {
            **os.environ,
            "MODELGATE_DATABASE_URL": database_url,
            "MODELGATE_CONFIG": str(config),
            "MODELGATE_BOOTSTRAP": "false",
            "MODELGATE_LOG_LEVEL": "warning",
            **{f"MODELGATE_{k.upper()}": str(v) for k, v in settings.items()},
        }
        log = open(tmp_path / f"instance-{port}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelgate.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # start-up on a loaded machine; not a speed assertion
        while True:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / f"instance-{port}.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return Instance(url=url, proc=proc)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def silent_upstream() -> Iterator[str]:
    """An upstream that accepts connections and never answers: requests to it stay in flight (and
    their holds open) until their first-byte timeout."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    sock.close()


def with_silent_model(config_text: str, silent_url: str) -> str:
    """The catalogue plus ``mock/silent``, routed to ``silent_upstream``."""
    provider = (
        f"  silent:\n    type: openai\n    base_url: {silent_url}\n    api_key: sk-silent\n"
        "    timeouts: {connect: 5, first_byte: 600, total: 600}\n    max_retries: 0\n"
    )
    model = (
        "\n  - id: mock/silent\n    info: {name: Silent, developer: test}\n"
        "    pricing: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}\n"
        "    routes:\n      - {provider: silent, model: x}\n"
    )
    return config_text.replace("models:\n", provider + "models:\n", 1) + model
