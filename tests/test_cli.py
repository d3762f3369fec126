"""The command line as users run it: subprocesses against real databases."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import _free_port
from tests.spec_helpers import response_schema, validate

KEY_RE = re.compile(r"^[0-9a-f]{32}$")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelgate.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )


def cli_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["MODELGATE_DATABASE_URL"] = database_url
    env.pop("MODELGATE_CONFIG", None)
    return env


def test_create_key_prints_only_the_key(database_url):
    env = cli_env(database_url)
    out = run_cli(
        "admin", "create-key", "--email", "Dev@Example.com", "--credits-usd", "5", "--name", "ci", env=env
    )
    assert out.returncode == 0, out.stderr
    assert KEY_RE.match(out.stdout.strip()), out.stdout
    assert out.stdout.count("\n") == 1
    again = run_cli("admin", "create-key", "--email", "dev@example.com", env=env)
    assert KEY_RE.match(again.stdout.strip()) and again.stdout.strip() != out.stdout.strip()
    topped = run_cli("admin", "top-up", "--email", "dev@example.com", "--usd", "1.5", env=env)
    assert topped.returncode == 0 and topped.stdout.strip() == "3000000"
    missing = run_cli("admin", "top-up", "--email", "ghost@example.com", "--usd", "1", env=env)
    assert missing.returncode == 1 and "no account" in missing.stderr


def test_bad_config_fails_fast_with_file_and_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("providers:\n  x: {type: teleport, base_url: http://h}\n")
    env = cli_env(f"sqlite:///{tmp_path}/db.sqlite")
    out = run_cli("serve", "--config", str(cfg), "--port", "1", env=env)
    assert out.returncode == 2
    assert str(cfg) in out.stderr and "providers.x.type" in out.stderr and "teleport" in out.stderr


@pytest.mark.local_model
def test_first_start_prints_key_and_seed_sample_works(tmp_path: Path):
    """The README flow: first start prints a key; the seed's Python sample (model swapped to
    smollm2) returns a real completion that validates against the spec's 200 schema.

    Nothing here may time out on a loaded machine: the answer is bounded by a 256-token context (an
    operator setting; the sample asks for up to 15000 tokens and the tiny model sometimes rambles
    until the context is full), every wait is minutes long, the server's output goes to a file (a
    pipe nobody reads can fill and block it), and the server is stopped once nothing is in flight
    (a stopping server drains: ``tests/test_drain.py``)."""
    pytest.importorskip("llama_cpp")
    port = _free_port()
    env = cli_env(f"sqlite:///{tmp_path}/first.db")
    config = tmp_path / "small-context.yaml"
    config.write_text("providers:\n  local:\n    type: local\n    options: {n_ctx: 256}\n")
    output = tmp_path / "server.log"
    with output.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelgate.cli", "serve", "--port", str(port), "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        key = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            m = re.search(r"\b([0-9a-f]{32})\b", output.read_text())
            if m:
                key = m.group(1)
                break
            time.sleep(0.2)
        assert key, output.read_text()
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/health", timeout=60).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        response = requests.post(
            f"{base}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            json={
                "model": "smollm2",
                "messages": [{"role": "user", "content": "Hi! What do you think about mankind?"}],
                "max_tokens": 15000,  # the seed sample's value, verbatim
            },
            timeout=900,
        )
        assert response.status_code == 200, response.text
        data = response.json()
        validate(data, response_schema("chat-gemini-2.5-pro.json", "/v1/chat/completions", "post"))
        assert data["model"] == "local/smollm2-135m-instruct"
        assert data["choices"][0]["message"]["content"].strip()
        # No fixed output cap on the embedded model: generation ends at a stop or a full context.
        assert 0 < data["usage"]["completion_tokens"] <= 256 and data["usage"]["prompt_tokens"] > 5
        assert data["meta"]["usage"]["credits_used"] > 0
    finally:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
            raise


def test_unreachable_database_at_start_is_one_line_and_a_failure():
    """Before: a 129-line traceback. Now: one line naming the URL without its password, and the cause."""
    port = _free_port()  # nothing listens there
    env = cli_env(f"postgresql://modelgate:s3cret@127.0.0.1:{port}/gateway")
    out = run_cli("serve", "--port", str(_free_port()), env=env)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f"postgresql://modelgate@127.0.0.1:{port}/gateway" in lines[0], lines[0]
    assert "s3cret" not in out.stderr + out.stdout
    assert "refused" in lines[0].lower(), lines[0]


@pytest.mark.postgres
def test_frozen_database_at_start_fails_within_the_timeout(pg_database):
    """A database that accepts the connection and answers nothing: one line after the timeout."""
    from tests.fakes.chaos_proxy import ChaosProxy
    from tests.outages.conftest import target_port, through_proxy

    with ChaosProxy(target_port(pg_database, 5432)) as proxy:
        proxy.freeze()
        env = cli_env(through_proxy(pg_database, proxy))
        env["MODELGATE_DATABASE_TIMEOUT"] = "1"
        out = run_cli("db", "upgrade", env=env)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "TimeoutError" in lines[0], out.stderr
    assert f"127.0.0.1:{proxy.port}" in lines[0]
