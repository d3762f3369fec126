"""Real coding agents (Claude Code, Codex CLI) and the newest SDKs against a live modelgate whose
catalogue routes each agent natively (pass-through) and translated, all to one scripted upstream
(``tests/fakes/agent_upstream.py``) that drives a multi-step tool task.

The agents come from npm at the versions pinned in ``package-lock.json`` here (``make agents``, which
``make test`` depends on); ``MODELGATE_AGENTS_DIR`` points at another install (``make clients-latest``
installs ``@latest`` into ``build/clients-latest``). When the packages are missing the first test
installs them; only when npm cannot reach its registry are the tests skipped, with npm's reason.

Nothing reaches the internet: every agent runs in a temporary HOME and project folder, with its
telemetry, update checks and other non-essential traffic switched off, and its only endpoint is
modelgate on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.agent_upstream import AgentUpstream, Step
from tests.fakes.threaded import BackgroundLoop

HERE = Path(__file__).parent
AGENT_KEY = "test-agent-key"
ORIGINAL = "colour = red\n"
EDITED = "colour = blue\n"
FINAL = "The colour is now blue."

PROVIDERS = f"""providers:
  anthropic:
    type: anthropic
    base_url: {{agent_url}}
    api_key: {AGENT_KEY}
    max_retries: 0
  agent-anthropic:
    type: anthropic
    base_url: {{agent_url}}
    api_key: {AGENT_KEY}
    max_retries: 0
  agent-chat:
    type: openai
    base_url: {{agent_url}}
    api_key: {AGENT_KEY}
    max_retries: 0
  agent-gemini:
    type: gemini
    base_url: {{gemini_url}}
    api_key: {AGENT_KEY}
    max_retries: 0
  agent-responses:
    type: openai
    base_url: {{agent_url}}
    api_key: {AGENT_KEY}
    max_retries: 0
    options: {{{{responses: true}}}}
"""

MODELS = """
  - id: anthropic/claude-agent
    aliases: [claude-agent]
    info: {{name: Claude agent, developer: Anthropic, contextLength: 1000000, outputMax: 128000}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: agent-anthropic, model: claude-upstream}}
  - id: openai/gpt-agent
    aliases: [gpt-agent]
    info: {{name: GPT agent, developer: OpenAI, contextLength: 1000000, outputMax: 128000}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: agent-responses, model: gpt-upstream}}
  - id: lab/chat-agent
    aliases: [chat-agent]
    info: {{name: Chat agent, developer: Lab, contextLength: 1000000, outputMax: 128000}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    reasoning: {{budget_min: 0}}
    routes:
      - {{provider: agent-chat, model: chat-upstream}}
"""

MODELS += """
  - id: google/gemini-agent
    aliases: [gemini-agent]
    info: {{name: Gemini agent, developer: Google, contextLength: 1000000, outputMax: 65536}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: agent-gemini, model: gemini-upstream}}
"""

CONFIG = MOCK_CONFIG.replace("providers:\n", PROVIDERS, 1) + MODELS
# The native Claude Code run sets no model: it asks for its default (2.1.332: claude-opus-5-5), which
# must resolve in the built-in catalogue, whose `anthropic` provider is pointed at the fake here. A
# release with a new default fails here first (make clients-latest): add it to the catalogue.


def agents_dir() -> Path:
    return Path(os.environ.get("MODELGATE_AGENTS_DIR") or HERE).resolve()


@dataclass(frozen=True)
class Agents:
    claude: Path
    codex: Path


def _install(where: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is needed for the agent tests (make agents installs it)")
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip()
        if any(s in reason for s in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "network")):
            pytest.skip(f"npm cannot reach its registry: {reason.splitlines()[-1]}")
        raise RuntimeError(f"npm ci in {where} failed: {reason}")


@pytest.fixture(scope="session")
def agents() -> Agents:
    where = agents_dir()
    bins = where / "node_modules" / ".bin"
    if not (bins / "claude").exists() or not (bins / "codex").exists():
        _install(where)
    return Agents(claude=bins / "claude", codex=bins / "codex")


@pytest.fixture(scope="session")
def agent_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


def start_upstream(loop: BackgroundLoop, plan: list[Step]) -> AgentUpstream:
    fake = AgentUpstream(plan=plan, final=FINAL, api_key=AGENT_KEY)
    loop.run(fake.start())
    return fake


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these runs are about the doors (the stores have their own tests), and few runs
    keep the suite fast."""
    return f"sqlite:///{tmp_path}/modelgate.db"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A temporary project folder with the one file the task edits."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text(ORIGINAL)
    return folder


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def agent_server(make_live_server: Any, fake: AgentUpstream, openai_base: str) -> LiveServer:
    config = CONFIG.format(base_url=openai_base, agent_url=fake.base_url, gemini_url=f"{fake.url}/v1beta")
    server: LiveServer = make_live_server(config)
    return server


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: nothing of the developer's (keys, proxies, config) leaks in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "TMPDIR": str(home),
        # A dead proxy for anything that would still try to leave the machine.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }


@contextmanager
def agent_turn(
    loop: BackgroundLoop, make_live_server: Any, openai_base: str, plan: list[Step]
) -> Iterator[tuple[AgentUpstream, LiveServer]]:
    """The scripted upstream and a gateway in front of it, for one agent run; the upstream stops
    at the end, whatever happened."""
    fake = start_upstream(loop, plan)
    try:
        yield fake, agent_server(make_live_server, fake, openai_base)
    finally:
        loop.run(fake.stop())


def run_agent(
    argv: list[str], project: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=project, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
    )


def assert_task_done(project: Path, fake: AgentUpstream, final: str, second_result: str) -> None:
    """The file changed on disk, the agent's last word is the upstream's, and the upstream saw the
    file's content, then ``second_result`` (the change's result), in later requests."""
    assert (project / "notes.txt").read_text() == EDITED
    assert final == FINAL
    assert len(fake.results) >= 2, fake.results
    assert ORIGINAL.strip() in fake.results[0]
    assert second_result in fake.results[1]
    assert {0, 1, 2} <= set(fake.steps_sent)
