"""Helpers for tests that run ``modelgate serve`` as processes under streaming load
(tests/test_drain.py, tests/test_rolling_restart.py): a paced upstream, a served instance, a
streaming load whose every stream must end with its finish and ``[DONE]``, and the books."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from aiohttp import web
from sqlalchemy import text

from modelgate.accounts.service import create_key, get_or_create_account, top_up
from modelgate.store.db import Database
from tests.fakes.openai_server import FakeOpenAI, Scripted

WORDS = " ".join(f"w{i}" for i in range(24))  # echoed back one chunk per word
LONG = "long-agent-turn"
SAFETY = 120.0  # a wait this long means something hangs


class PacedUpstream(FakeOpenAI):
    """Streams a chunk every 20 ms; an agent's turn (``LONG`` in the prompt) a chunk every 300 ms,
    longer than the 5 s uvicorn's shutdown used to give a stream."""

    async def default_reply(self, request: web.Request, body: bytes) -> web.StreamResponse | None:
        self.script(Scripted(chunk_delay=0.3 if LONG.encode() in body else 0.02))
        return await super().default_reply(request, body)


class Instance:
    def __init__(self, tmp: Path, port: int, config: Path, database_url: str, name: str, **env: str) -> None:
        self.port, self.config, self.name, self.tmp = port, str(config), name, tmp
        self.env = dict(
            os.environ,
            MODELGATE_DATABASE_URL=database_url,
            MODELGATE_BOOTSTRAP="false",
            MODELGATE_LOG_LEVEL="info",
            **env,
        )
        for name in ("MODELGATE_CONFIG", "MODELGATE_DRAIN_TIMEOUT", "MODELGATE_SHUTDOWN_TIMEOUT"):
            if name not in env:
                self.env.pop(name, None)  # the defaults are what is tested
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with (self.tmp / f"{self.name}-{self.starts}.log").open("w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "modelgate.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--config",
                    str(self.config),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + SAFETY
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=5).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not start: {self.log()}")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(SAFETY)

    def log(self) -> str:
        return (self.tmp / f"{self.name}-{self.starts}.log").read_text()[-3000:]


class Load:
    """Streams, ``concurrency`` at a time, until stopped; ``one`` runs one stream."""

    def __init__(self, url: str, key: str, concurrency: int = 0) -> None:
        self.url, self.key = url, key
        self.stop = threading.Event()
        self.started = threading.Event()  # a stream's first line arrived (for the agent's turn)
        self.completed = 0
        self.broken: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(concurrency)]

    def one(self, session: requests.Session, url: str | None = None, prompt: str = WORDS) -> str | None:
        body: dict[str, Any] = {
            "model": "mock/echo",
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
            "max_tokens": 64,
        }
        try:
            with session.post(
                f"{url or self.url}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {self.key}"},
                stream=True,
                timeout=SAFETY,
            ) as response:
                if response.status_code != 200:
                    return f"status {response.status_code}: {response.text[:200]}"
                finished = done = False
                for line in response.iter_lines():
                    self.started.set()
                    if line == b"data: [DONE]":
                        done = True
                    elif line.startswith(b"data: {"):
                        chunk = json.loads(line[6:])
                        if chunk.get("choices") and chunk["choices"][0].get("finish_reason") == "stop":
                            finished = True
                return None if finished and done else f"cut: finish {finished}, [DONE] {done}"
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                error = self.one(session)
                with self.lock:
                    if error is None:
                        self.completed += 1
                    else:
                        self.broken.append(error)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + SAFETY
        while self.completed < count and not self.broken:
            assert time.monotonic() < deadline, f"only {self.completed} streams completed"
            time.sleep(0.1)


async def account(url: str) -> tuple[str, int, int]:
    db = Database(url)
    try:
        await db.upgrade()
        async with db.engine.begin() as conn:
            account_id = await get_or_create_account(conn, email="rolling@example.com")
            await top_up(conn, account_id=account_id, usd=100.0)
            new = await create_key(conn, account_id=account_id, name="rolling")
            balance = (
                await conn.execute(
                    text("SELECT balance_credits FROM accounts WHERE id = :a"), {"a": account_id}
                )
            ).scalar_one()
        return new.key, account_id, int(balance)
    finally:
        await db.aclose()


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails after SAFETY seconds)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return data
