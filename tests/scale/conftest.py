"""Several modelgate instances (threads, each its own app and event loop) sharing one real
PostgreSQL database and one real Redis, with a Redis key prefix unique to the test."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelgate.app import build_app
from modelgate.settings import Settings
from tests.conftest import MOCK_CONFIG, LiveServer, _create_schema, _free_port, _ServerThread, _truncate_pg
from tests.fakes.openai_server import FakeOpenAI

REDIS_URL = os.environ.get("MODELGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    if not _redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    import redis

    prefix = f"mgtest:{secrets.token_hex(6)}:"
    yield prefix
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(match=prefix + "*"))
    if keys:
        r.delete(*keys)
    r.close()


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
                **kw,
            )
            app = build_app(settings)
            t = _ServerThread(app, _free_port())
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
