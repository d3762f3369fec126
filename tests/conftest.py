"""Shared fixtures: real databases (SQLite file and a fresh PostgreSQL database per session),
protocol-level fake upstreams, and a live modelgate server in a background thread."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

from modelgate.accounts.service import create_key, get_or_create_account, top_up
from modelgate.app import build_app
from modelgate.httpserver import uvicorn_options
from modelgate.settings import Settings
from modelgate.store.db import Database
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import ScriptedServer
from tests.fakes.threaded import BackgroundLoop

REDIS_URL = os.environ.get("MODELGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def pytest_configure(config: pytest.Config) -> None:
    """Servers the tests start (in process and as subprocesses, which inherit the environment)
    start the embedded model's worker on its first call, not at start-up: most never call it, and
    each start-up load cost a second or two of CPU and a stop that waited for the load to finish.
    ``MODELGATE_WARM_UP=true`` runs the suite the way a server starts by default;
    tests/providers/test_warm_up.py checks both."""
    os.environ.setdefault("MODELGATE_WARM_UP", "false")


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix unique to the test; its keys are deleted afterwards (skips without Redis)."""
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    import redis

    prefix = f"mgtest:{secrets.token_hex(6)}:"
    yield prefix
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(match=prefix + "*"))
    if keys:
        r.delete(*keys)
    r.close()


PG_ADMIN_URL = os.environ.get("MODELGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

MOCK_CONFIG = """
providers:
  mock:
    type: openai
    base_url: {base_url}
    api_key: ${{MOCK_KEY:-sk-mock}}
    timeouts: {{connect: 2, first_byte: 3, total: 10}}
    max_retries: 0
  mock2:
    type: openai
    base_url: {base_url}
    api_key: sk-mock2
    max_retries: 0
  nokey:
    type: openai
    base_url: http://127.0.0.1:9/v1
    api_key: ${{MODELGATE_TEST_UNSET_KEY}}
models:
  - id: mock/echo
    aliases: [echo]
    info: {{name: Mock, developer: Lab, contextLength: 8192, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: mock, model: mock-model}}
  - id: mock/chain
    info: {{name: Chain, developer: Lab, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: mock, model: first-model}}
      - {{provider: mock2, model: second-model}}
  - id: mock/unconfigured
    info: {{name: Nokey, developer: Lab}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: nokey, model: x}}
"""


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out for outgoing connections (and ``bind(0)``)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _free_port() -> int:
    """A port nothing listens on now, for a server started a moment later (a subprocess, nginx,
    PostgreSQL). Drawn at random below the kernel's ephemeral range where there is room: there no
    client connection of this or a parallel test process (pytest-xdist workers) can take it before
    the server binds it, and two processes drawing at once rarely meet. A server in this process
    binds at once instead (``_ServerThread``)."""
    low = _ephemeral_low()
    if low > 12_000:
        draw = random.SystemRandom()
        for _ in range(100):
            port = draw.randrange(10_000, low)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    import asyncpg

    name = f"mg_test_{secrets.token_hex(4)}"
    admin = PG_ADMIN_URL

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/modelgate.db"
        return
    url: str = request.getfixturevalue("pg_database")
    # Emptied before too: a test that uses pg_database directly (two instances, a rolling restart)
    # may leave rows, and a server started here must see the empty database it would bootstrap.
    _truncate_pg(url)
    yield url
    _truncate_pg(url)


def _truncate_pg(url: str) -> None:
    async def run() -> None:
        db = Database(url)
        try:
            from sqlalchemy import inspect

            from modelgate.store.schema import Base

            async with db.engine.begin() as conn:
                existing = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
                for table in reversed(Base.metadata.sorted_tables):
                    if table.name in existing:
                        await conn.execute(table.delete())
        finally:
            await db.aclose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().serve_in_thread()
    yield fake
    fake.stop_thread()


@pytest.fixture
def openai_upstream(fake_openai: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_openai.reset()
    yield fake_openai
    fake_openai.reset()


ANTHROPIC_KEY = "test-anthropic-key"
GEMINI_KEY = "test-gemini-key"


@pytest.fixture(scope="session")
def fakes_loop() -> Iterator[BackgroundLoop]:
    """One background event loop for the protocol-level fakes a live server calls."""
    loop = BackgroundLoop()
    yield loop
    loop.close()


Fake = TypeVar("Fake", bound=ScriptedServer)


def served(loop: BackgroundLoop, fake: Fake) -> Iterator[Fake]:
    """A fixture's body for a protocol fake: started on ``loop``, yielded, stopped."""
    loop.run(fake.start())
    try:
        yield fake
    finally:
        loop.run(fake.stop())


@pytest.fixture
def anthropic_up(fakes_loop: BackgroundLoop) -> Iterator[AnthropicFake]:
    """A fresh Anthropic Messages fake (``x-api-key: ANTHROPIC_KEY``), for any live-server test."""
    yield from served(fakes_loop, AnthropicFake(api_key=ANTHROPIC_KEY))


@pytest.fixture
def gemini_up(fakes_loop: BackgroundLoop) -> Iterator[GeminiFake]:
    """A fresh Gemini fake (``x-goog-api-key: GEMINI_KEY``), for any live-server test."""
    yield from served(fakes_loop, GeminiFake(api_key=GEMINI_KEY))


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: Any

    def run(self, coro: Any) -> Any:
        """Run a coroutine against the server's database from the test thread."""
        return asyncio.run(coro)

    def create_key(self, *, email: str = "user@example.com", usd: float = 10.0, **kw: Any) -> str:
        async def make() -> str:
            db = Database(self.settings.database_url)
            try:
                async with db.engine.begin() as conn:
                    account_id = await get_or_create_account(conn, email=email)
                    if usd:
                        await top_up(conn, account_id=account_id, usd=usd)
                    return (await create_key(conn, account_id=account_id, **kw)).key
            finally:
                await db.aclose()

        return str(asyncio.run(make()))


class _ServerThread:
    """A live server as ``modelgate serve`` runs it: the guarded HTTP protocol (slow or idle
    clients) and the connection cap of ``settings`` (``httpserver.uvicorn_options``)."""

    def __init__(self, app: Any, port: int = 0, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        # Bound here, before the thread starts: no other process (parallel test workers, their
        # clients) can take the port between choosing it and listening on it.
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(("127.0.0.1", port))
        except OSError:
            self.sock.bind(("127.0.0.1", 0))  # taken since it was chosen: any free port will do
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=int(self.sock.getsockname()[1]),
            log_level="warning",
            lifespan="on",
            **uvicorn_options(settings),
        )
        config.modelgate_timeouts = (settings.http_header_timeout, settings.http_body_timeout)  # type: ignore[attr-defined]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("modelgate test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture
def make_live_server(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Factory: ``make_live_server(config_yaml_text)`` starts modelgate on that catalogue."""
    threads: list[_ServerThread] = []

    def make(config_text: str, **settings_kw: Any) -> LiveServer:
        config = tmp_path / f"modelgate-{len(threads)}.yaml"
        config.write_text(config_text)
        settings = Settings(
            database_url=database_url,
            config=config,
            bootstrap=False,
            log_flush_interval=0.05,
            **settings_kw,
        )
        app = build_app(settings)
        asyncio.run(_create_schema(database_url))
        thread = _ServerThread(app, settings=settings)
        thread.start()
        threads.append(thread)
        return LiveServer(url=f"http://127.0.0.1:{thread.server.config.port}", settings=settings, app=app)

    yield make
    for thread in threads:
        thread.stop()


@pytest.fixture
def live_server(make_live_server: Any, openai_upstream: FakeOpenAI) -> LiveServer:
    server: LiveServer = make_live_server(MOCK_CONFIG.format(base_url=openai_upstream.base_url))
    return server


async def _create_schema(url: str) -> None:
    db = Database(url)
    try:
        await db.create_schema()
    finally:
        await db.aclose()
