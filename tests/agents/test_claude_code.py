"""Claude Code (headless, ``claude -p``) completes a read-then-edit task through modelgate's Messages
door: natively (pass-through to an Anthropic upstream) and translated (to an OpenAI-compatible chat
upstream). The scripted upstream asks for ``Read``, sees the file's content in the next request,
asks for ``Edit``, sees the edit's result, then answers; the file must have changed on disk."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.agents.conftest import FINAL, Agents, agent_turn, assert_task_done, base_env, run_agent
from tests.fakes import mcp_stdio
from tests.fakes.agent_upstream import Step
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import BackgroundLoop


def claude_env(home: Path, base_url: str, key: str, model: str | None) -> dict[str, str]:
    """``model`` None: Claude Code's own default (the test catalogue has it as an alias)."""
    chosen = (
        {
            "ANTHROPIC_MODEL": model,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
            "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
            "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
            "CLAUDE_CODE_SUBAGENT_MODEL": model,
        }
        if model
        else {}
    )
    return {
        **base_env(home),
        **chosen,
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": key,
        # Nothing but the gateway: no telemetry, error reports, update checks or surveys.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    }


def run_claude(agents: Agents, project: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = run_agent(
        [
            str(agents.claude),
            "-p",
            "In notes.txt, change the colour from red to blue.",
            "--output-format",
            "json",
            "--permission-mode",
            "acceptEdits",
            "--allowedTools",
            "Read,Edit",
            "--max-turns",
            "6",
        ],
        project,
        env,
    )
    assert proc.stdout.strip(), proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and not result.get("is_error"), (result, proc.stderr)
    return result


def plan(project: Path) -> list[Step]:
    path = str(project / "notes.txt")
    return [
        Step("Read", {"file_path": path}),
        Step("Edit", {"file_path": path, "old_string": "colour = red", "new_string": "colour = blue"}),
    ]


@pytest.mark.parametrize(
    "model", [None, "chat-agent", "gemini-agent"], ids=["native-default-model", "translated", "gemini"]
)
def test_claude_code_reads_then_edits_a_file(
    model: str | None,
    agents: Agents,
    agent_loop: BackgroundLoop,
    make_live_server: Any,
    openai_upstream: FakeOpenAI,
    project: Path,
    home: Path,
) -> None:
    with agent_turn(agent_loop, make_live_server, openai_upstream.base_url, plan(project)) as (fake, server):
        result = run_claude(agents, project, claude_env(home, server.url, server.create_key(), model))
    assert_task_done(project, fake, result["result"], "notes.txt")
    # Current releases put a system message mid-conversation (after the first user turn), with
    # adaptive thinking and an effort: passed through as sent, or kept in place as a system message.
    first = fake.planned[0].json
    if model != "gemini-agent":  # Gemini has one system instruction: the message joins it
        roles = [m["role"] for m in first["messages"]]
        assert "system" in roles[roles.index("user") :], roles
    if model is None:  # Claude Code's default model, routed by the built-in catalogue
        assert {r.path for r in fake.requests} == {"/v1/messages"}
        assert {r.json["model"] for r in fake.planned} == {"claude-opus-5-5"}
        assert first["thinking"]["type"] == "adaptive" and "effort" in first["output_config"]
    elif model == "chat-agent":
        assert {r.path for r in fake.requests} == {"/v1/chat/completions"}
        assert first["reasoning_effort"] in ("low", "medium", "high")
    else:
        assert {r.path for r in fake.requests} == {"/v1beta/models/gemini-upstream:streamGenerateContent"}


@pytest.mark.parametrize("problem", ["bad key", "no credits"])
def test_claude_code_stops_at_once_on_a_bad_key_or_no_credits(
    problem: str,
    agents: Agents,
    agent_loop: BackgroundLoop,
    make_live_server: Any,
    openai_upstream: FakeOpenAI,
    project: Path,
    home: Path,
) -> None:
    """401 and 402 carry ``x-should-retry: false``: Claude Code gives up on the first answer (it
    retried a bad key 11 times over ~3 minutes before, far past this test's time-out), and no
    credits reads as a billing error, not as a failed authentication."""
    with agent_turn(agent_loop, make_live_server, openai_upstream.base_url, plan(project)) as (fake, server):
        key = "sk-not-a-key" if problem == "bad key" else server.create_key(usd=0)
        env = claude_env(home, server.url, key, "claude-agent")
        proc = run_agent(
            [str(agents.claude), "-p", "hi", "--output-format", "json"], project, env, timeout=120
        )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["is_error"] is True and fake.requests == []
    if problem == "no credits":
        assert result["api_error_status"] == 402 and "credit balance is too low" in result["result"].lower()
    else:
        assert result["api_error_status"] == 401 and "credit" not in result["result"].lower()


@pytest.mark.parametrize("model", [None, "chat-agent"], ids=["native-default-model", "translated"])
def test_claude_code_finds_an_mcp_tool_by_tool_search(
    model: str | None,
    agents: Agents,
    agent_loop: BackgroundLoop,
    make_live_server: Any,
    openai_upstream: FakeOpenAI,
    project: Path,
    home: Path,
) -> None:
    """Claude Code defers an MCP server's tools behind its ToolSearch (``defer_loading: true``, the
    advanced-tool-use beta): the search's ``tool_result`` loads a tool by a ``tool_reference`` block,
    and a chat model is offered that tool from then on, as Anthropic's is, never the placeholder."""
    config = project.parent / "mcp.json"
    server_cmd = {"command": sys.executable, "args": [str(Path(mcp_stdio.__file__))]}
    config.write_text(json.dumps({"mcpServers": {"tracker": server_cmd}}))
    tool = "mcp__tracker__open_ticket"
    steps = [Step("ToolSearch", {"query": f"select:{tool}"}), Step(tool, {"id": 7})]
    with agent_turn(agent_loop, make_live_server, openai_upstream.base_url, steps) as (fake, server):
        env = {**claude_env(home, server.url, server.create_key(), model), "ENABLE_TOOL_SEARCH": "true"}
        argv = [str(agents.claude), "-p", "Open ticket 7.", "--output-format", "json"]
        argv += ["--mcp-config", str(config), "--allowedTools", f"ToolSearch,{tool}", "--max-turns", "6"]
        proc = run_agent(argv, project, env)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and result["result"] == FINAL, (result, proc.stderr)
    assert mcp_stdio.TICKET in fake.results[1]
    loaded = fake.planned[1].json
    if model is None:  # passed through: the deferred tools and the tool_reference as sent
        assert any(t.get("defer_loading") for t in loaded["tools"] if t["name"] == tool)
        assert '"tool_reference"' in fake.planned[1].body.decode()
    else:
        names = [t["function"]["name"] for t in loaded["tools"]]
        assert tool in names and "DeferredToolPlaceholder" not in names
        assert f"[tool loaded: {tool}]" in fake.results[0]
