"""SIGTERM twice to a real ``modelgate serve`` process in the middle of local-model generations.

The first SIGTERM starts the drain (``drain.py``: the generations would be given
``MODELGATE_DRAIN_TIMEOUT``, 600 s, to finish); the second stops the worker at once. It must stop
within a bound (the generations are cancelled, not waited for), and each cancelled request must be
settled for the tokens it produced, with its log row written. (Until the drain, one SIGTERM did
this after ``MODELGATE_SHUTDOWN_TIMEOUT``; the drain itself is tested in tests/test_drain.py.)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from modelgate.store.db import Database
from tests.conftest import _free_port

# Far above the worker's own bound (shutdown_timeout 5 s + cancellation + closing), so a busy machine
# passes; far below what the two generations left running would need without the fix.
EXIT_BOUND = 60.0
STORY = "Write a very long story."  # greedy SmolLM2 writes until max_tokens


def _wait_for(predicate: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.local_model
def test_sigterm_cancels_local_generations_settles_and_logs_them(tmp_path: Path, database_url: str) -> None:
    pytest.importorskip("llama_cpp")
    config = tmp_path / "local.yaml"
    config.write_text("providers:\n  local:\n    type: local\n    options: {n_ctx: 4096, parallel: 4}\n")
    env = dict(os.environ, MODELGATE_DATABASE_URL=database_url, MODELGATE_LOG_LEVEL="info")
    env.pop("MODELGATE_CONFIG", None)
    for name in ("MODELGATE_SHUTDOWN_TIMEOUT", "MODELGATE_DRAIN_TIMEOUT", "MODELGATE_DRAIN_NOTICE"):
        env.pop(name, None)  # the default bounds are what is tested
    port = _free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelgate.cli", "serve", "--port", str(port), "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    try:
        _wait_for(lambda: re.search(r"\b[0-9a-f]{32}\b", log_path.read_text()), 300, "the bootstrap key")
        match = re.search(r"\b([0-9a-f]{32})\b", log_path.read_text())
        assert match
        headers = {"Authorization": f"Bearer {match.group(1)}"}

        def healthy() -> bool:
            try:
                return requests.get(f"{base}/health", timeout=5).ok
            except requests.ConnectionError:
                return False

        _wait_for(healthy, 300, "/health")
        body = {
            "model": "smollm2",
            "messages": [{"role": "user", "content": STORY}],
            "max_tokens": 1500,
            "temperature": 0,
        }

        def plain() -> None:
            try:
                results["plain"] = requests.post(
                    f"{base}/v1/chat/completions", headers=headers, json=body, timeout=900
                ).status_code
            except requests.RequestException as exc:
                results["plain"] = exc

        chunks: list[dict[str, Any]] = []

        def streamed() -> None:
            try:
                with requests.post(
                    f"{base}/v1/chat/completions",
                    headers=headers,
                    json={**body, "stream": True},
                    stream=True,
                    timeout=900,
                ) as response:
                    results["stream_id"] = response.headers.get("x-inference-id")
                    for line in response.iter_lines():
                        if line.startswith(b"data: {"):
                            chunks.append(json.loads(line[6:]))
                        elif line == b"data: [DONE]":
                            results["done"] = True
            except requests.RequestException as exc:
                results["stream_error"] = exc

        threads = [threading.Thread(target=plain), threading.Thread(target=streamed)]
        threads[0].start()
        time.sleep(0.5)  # admitted first: running alongside the stream below
        threads[1].start()
        _wait_for(lambda: len(chunks) >= 5 or not threads[1].is_alive(), 600, "the first streamed tokens")
        assert len(chunks) >= 5, (results, log_path.read_text()[-3000:])

        proc.send_signal(signal.SIGTERM)  # the drain: the generations would be waited for
        _wait_for(lambda: "draining:" in log_path.read_text(), 60, "the drain")
        assert threads[1].is_alive(), "the stream goes on while the worker drains"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # the second signal: stop now
        try:
            proc.wait(EXIT_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not exit within {EXIT_BOUND} s of the second SIGTERM")
        elapsed = time.monotonic() - started
        for t in threads:
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)

    # Both generations were cut, not run to their end.
    assert "done" not in results, results
    assert not any(c["choices"] and c["choices"][0].get("finish_reason") for c in chunks)
    assert results.get("plain") != 200, results

    holds, logs, charges = asyncio.run(_books(database_url))
    assert holds == 0, "a hold was left open"
    assert sorted(bool(row[1]) for row in logs) == [False, True], logs  # one log row per request
    for inference_id, is_stream, status, completion_tokens, credits in logs:
        assert status == 499, logs
        assert completion_tokens > 0 and credits > 0, logs  # charged for the tokens produced
        assert charges.get(inference_id) == credits, (logs, charges)
        if is_stream:
            assert inference_id == results["stream_id"]
            assert completion_tokens >= len(chunks) - 1  # every streamed token was counted
    print(f"exit {elapsed:.1f} s after the second SIGTERM")


async def _books(database_url: str) -> tuple[int, list[Any], dict[str, int]]:
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            holds = (await conn.execute(text("SELECT COUNT(*) FROM holds"))).scalar_one()
            logs = (
                await conn.execute(
                    text(
                        "SELECT inference_id, stream, http_status, completion_tokens, credits"
                        " FROM request_logs"
                    )
                )
            ).all()
            charges = (
                await conn.execute(text("SELECT reference_id, -credits FROM ledger WHERE kind = 'charge'"))
            ).all()
        return int(holds), list(logs), {str(r[0]): int(r[1]) for r in charges}
    finally:
        await db.aclose()
