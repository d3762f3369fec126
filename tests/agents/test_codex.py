"""Codex CLI (headless, ``codex exec``) completes a read-then-change task through modelgate's
Responses door (``wire_api = "responses"``): natively (pass-through to a Responses upstream) and
translated (to an OpenAI-compatible chat upstream). The scripted upstream asks ``exec_command`` to
``cat`` the file, sees its content in the next request, asks it to rewrite the file, sees that
command's result, then answers; the file must have changed on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.agents.conftest import Agents, agent_turn, assert_task_done, base_env, run_agent
from tests.fakes.agent_upstream import Step
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import BackgroundLoop

CONFIG = """model = "{model}"
model_provider = "modelgate"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[model_providers.modelgate]
name = "modelgate"
base_url = "{base_url}/v1"
env_key = "MODELGATE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""

PLAN = [
    Step("exec_command", {"cmd": "cat notes.txt"}),
    Step("exec_command", {"cmd": "sed -i 's/colour = red/colour = blue/' notes.txt && echo edited"}),
]


def run_codex(agents: Agents, project: Path, home: Path, base_url: str, key: str, model: str) -> str:
    codex_home = home / ".codex"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(CONFIG.format(model=model, base_url=base_url))
    last = home / "last-message.txt"
    env = {
        **base_env(home),
        "CODEX_HOME": str(codex_home),
        "MODELGATE_API_KEY": key,
    }
    proc = run_agent(
        [
            str(agents.codex),
            "exec",
            "--strict-config",
            "--skip-git-repo-check",
            "--sandbox",
            "danger-full-access",
            "--output-last-message",
            str(last),
            "In notes.txt, change the colour from red to blue.",
        ],
        project,
        env,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return last.read_text().strip()


@pytest.mark.parametrize(
    "model", ["gpt-agent", "chat-agent", "gemini-agent"], ids=["native", "translated", "gemini"]
)
def test_codex_reads_then_changes_a_file(
    model: str,
    agents: Agents,
    agent_loop: BackgroundLoop,
    make_live_server: Any,
    openai_upstream: FakeOpenAI,
    project: Path,
    home: Path,
) -> None:
    with agent_turn(agent_loop, make_live_server, openai_upstream.base_url, PLAN) as (fake, server):
        final = run_codex(agents, project, home, server.url, server.create_key(), model)
    assert_task_done(project, fake, final, "edited")
    path = {
        "gpt-agent": "/v1/responses",
        "chat-agent": "/v1/chat/completions",
        "gemini-agent": "/v1beta/models/gemini-upstream:streamGenerateContent",
    }[model]
    assert {r.path for r in fake.requests} == {path}
    # Codex's namespaced tools (sub-agents): passed through as sent, or flattened for chat.
    tools = fake.planned[0].json["tools"]
    if model == "gpt-agent":
        assert any(t.get("type") == "namespace" for t in tools)
    elif model == "gemini-agent":
        names = [d["name"] for d in tools[0]["functionDeclarations"]]
        assert "exec_command" in names and any("__" in n for n in names), names
    else:
        names = [t["function"]["name"] for t in tools]
        assert "exec_command" in names and any("__" in n for n in names), names  # <namespace>__<name>
