"""The newest anthropic and openai Python SDKs (pyproject pins their ranges; ``make clients-latest``
upgrades them first) drive the same read-then-write tool task as the agents, with a tool loop of
their own, natively and translated: Messages (streamed), Responses, and chat completions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.agents.conftest import EDITED, FINAL, ORIGINAL, agent_server, start_upstream
from tests.fakes.agent_upstream import AgentUpstream, Step
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import BackgroundLoop

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["path"],
}
PLAN = [
    Step("read_file", {"path": "notes.txt"}),
    Step("write_file", {"path": "notes.txt", "content": EDITED}),
]
MAX_TURNS = 6


def run_tool(project: Path, name: str, args: dict[str, Any]) -> str:
    target = project / Path(args["path"]).name
    if name == "read_file":
        return target.read_text()
    target.write_text(args["content"])
    return f"wrote {len(args['content'])} characters to {target.name}"


@pytest.fixture
def task(agent_loop: BackgroundLoop, make_live_server: Any, openai_upstream: FakeOpenAI) -> Any:
    fake = start_upstream(agent_loop, PLAN)
    server = agent_server(make_live_server, fake, openai_upstream.base_url)
    yield fake, server
    agent_loop.run(fake.stop())


def check(fake: AgentUpstream, project: Path, final: str) -> None:
    assert final == FINAL
    assert (project / "notes.txt").read_text() == EDITED
    assert fake.results[:2] == [ORIGINAL, f"wrote {len(EDITED)} characters to notes.txt"]


@pytest.mark.parametrize("model", ["claude-agent", "chat-agent"], ids=["native", "translated"])
def test_anthropic_sdk_tool_loop(model: str, task: Any, project: Path) -> None:
    fake, server = task
    client = anthropic.Anthropic(base_url=server.url, api_key=server.create_key(), max_retries=0, timeout=60)
    tools: list[Any] = [
        {"name": n, "description": n, "input_schema": SCHEMA} for n in ("read_file", "write_file")
    ]
    messages: list[Any] = [{"role": "user", "content": "Change the colour in notes.txt to blue."}]
    for _ in range(MAX_TURNS):
        with client.messages.stream(model=model, max_tokens=1024, tools=tools, messages=messages) as stream:
            msg = stream.get_final_message()
        messages.append({"role": "assistant", "content": msg.content})
        calls = [b for b in msg.content if b.type == "tool_use"]
        if msg.stop_reason != "tool_use":
            break
        results = [
            {"type": "tool_result", "tool_use_id": c.id, "content": run_tool(project, c.name, dict(c.input))}  # type: ignore[arg-type]
            for c in calls
        ]
        messages.append({"role": "user", "content": results})
    check(fake, project, "".join(b.text for b in msg.content if b.type == "text"))


@pytest.mark.parametrize("model", ["gpt-agent", "chat-agent"], ids=["native", "translated"])
def test_openai_sdk_responses_tool_loop(model: str, task: Any, project: Path) -> None:
    fake, server = task
    client = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=server.create_key(), max_retries=0, timeout=60
    )
    tools: list[Any] = [
        {"type": "function", "name": n, "description": n, "parameters": SCHEMA, "strict": False}
        for n in ("read_file", "write_file")
    ]
    items: list[Any] = [{"role": "user", "content": "Change the colour in notes.txt to blue."}]
    for _ in range(MAX_TURNS):
        resp = client.responses.create(model=model, input=items, tools=tools, store=False)
        calls = [i for i in resp.output if i.type == "function_call"]
        if not calls:
            break
        items += [i.model_dump(exclude_none=True) for i in calls]
        items += [
            {
                "type": "function_call_output",
                "call_id": c.call_id,
                "output": run_tool(project, c.name, json.loads(c.arguments)),
            }
            for c in calls
        ]
    check(fake, project, resp.output_text)


@pytest.mark.parametrize("model", ["chat-agent", "claude-agent"], ids=["native", "translated"])
def test_openai_sdk_chat_tool_loop(model: str, task: Any, project: Path) -> None:
    fake, server = task
    client = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=server.create_key(), max_retries=0, timeout=60
    )
    tools: list[Any] = [
        {"type": "function", "function": {"name": n, "description": n, "parameters": SCHEMA}}
        for n in ("read_file", "write_file")
    ]
    messages: list[Any] = [{"role": "user", "content": "Change the colour in notes.txt to blue."}]
    for _ in range(MAX_TURNS):
        done = client.chat.completions.create(model=model, messages=messages, tools=tools)
        msg = done.choices[0].message
        messages.append(msg.model_dump(exclude_none=True))
        if not msg.tool_calls:
            break
        for call in msg.tool_calls:
            assert call.type == "function"
            out = run_tool(project, call.function.name, json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": out})
    check(fake, project, msg.content or "")
