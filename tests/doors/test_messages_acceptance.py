"""The Messages door accepts what current clients send (issue 20), on every route kind: passed
through to Anthropic, translated to an OpenAI-compatible chat upstream and to Gemini. Each test is a
request shape a current client sends that was refused or silently changed before: a system message
mid-conversation, adaptive thinking with ``output_config.effort``, ``output_config.format``,
server-tool history (web search, search results), unknown top-level fields and beta headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.conftest import GEMINI_KEY, LiveServer
from tests.doors.conftest import DOOR_CONFIG
from tests.fakes import Reply, load
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI

EXTRA_MODELS = """
  - id: lab/thinker
    aliases: [thinker]
    info: {{name: Thinker, developer: Lab, outputMax: 64000}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    reasoning: {{budget_min: 0}}
    routes:
      - {{provider: mock, model: thinker-upstream}}
  - id: google/gemini-test
    aliases: [gemini-test]
    info: {{name: Gemini test, developer: Google, outputMax: 65536}}
    pricing: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    routes:
      - {{provider: gem, model: gemini-2.5-flash}}
"""
GEMINI_PROVIDER = f"  gem:\n    type: gemini\n    base_url: {{gemini_url}}\n    api_key: {GEMINI_KEY}\n"

# What Claude Code 2.1 sends: a system message after the first user turn, adaptive thinking, an
# effort, context management, and beta headers this gateway has never heard of.
CLAUDE_CODE_BODY: dict[str, Any] = {
    "max_tokens": 4096,
    "system": [{"type": "text", "text": "You are an agent.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
        {"role": "system", "content": [{"type": "text", "text": "# Environment\ncwd: /tmp/p"}]},
    ],
    "thinking": {"type": "adaptive", "display": "omitted"},
    "output_config": {"effort": "high"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "future_top_level_field": {"anything": [1, 2]},
    "metadata": {"user_id": '{"device_id":"d5","session_id":"9d"}'},
}
HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,effort-2025-11-24,made-up-beta-2099-01-01",
}

WEB_SEARCH_HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "What's new in Python?"},
    {
        "role": "assistant",
        "content": [
            {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {"query": "python"},
            },
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_1",
                "content": [
                    {
                        "type": "web_search_result",
                        "url": "https://python.org/news",
                        "title": "Python News",
                        "encrypted_content": "EqgfCioIARgB-opaque",
                        "page_age": "2 days ago",
                    }
                ],
            },
            {"type": "text", "text": "Python 3.15 is out.", "citations": None},
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "search_result",
                "source": "https://docs.example/kb/1",
                "title": "Team notes",
                "content": [{"type": "text", "text": "We use Python 3.14."}],
            },
            {"type": "text", "text": "Should we upgrade?"},
        ],
    },
]


@pytest.fixture
def server(
    make_live_server: Any, openai_upstream: FakeOpenAI, anthropic_up: AnthropicFake, gemini_up: GeminiFake
) -> LiveServer:
    config = (DOOR_CONFIG + EXTRA_MODELS).replace("providers:\n", "providers:\n" + GEMINI_PROVIDER, 1)
    live: LiveServer = make_live_server(
        config.format(
            base_url=openai_upstream.base_url,
            anthropic_url=anthropic_up.base_url,
            gemini_url=gemini_up.base_url,
        )
    )
    return live


def post(
    server: LiveServer, body: dict[str, Any], *, key: str | None = None, **headers: str
) -> requests.Response:
    return requests.post(
        f"{server.url}/v1/messages",
        json=body,
        headers={**HEADERS, "x-api-key": key or server.create_key(), **headers},
        timeout=60,
    )


def test_claude_code_shape_passes_through_to_anthropic(
    server: LiveServer, anthropic_up: AnthropicFake
) -> None:
    anthropic_up.add(Reply(body=load("anthropic_text.json")))
    r = post(server, {**CLAUDE_CODE_BODY, "model": "claude-test"})
    assert r.status_code == 200, r.text
    sent = anthropic_up.last
    assert [m["role"] for m in sent["messages"]] == ["user", "system"]
    assert sent["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert sent["output_config"] == {"effort": "high"} and "future_top_level_field" in sent
    assert sent.headers["anthropic-beta"] == HEADERS["anthropic-beta"]
    assert "x-modelgate-dropped" not in r.headers


def test_claude_code_shape_translated_to_chat(server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    r = post(server, {**CLAUDE_CODE_BODY, "model": "thinker"})
    assert r.status_code == 200, r.text
    sent = openai_upstream.last
    # The mid-conversation system message stays where it was, as a system message.
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "system"]
    assert sent["messages"][2]["content"] == "# Environment\ncwd: /tmp/p"
    assert sent["reasoning_effort"] == "high"
    dropped = r.headers["x-modelgate-dropped"].split(", ")
    assert dropped == ["context_management", "future_top_level_field"]


def _deferred(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "An MCP tool.",
        "input_schema": {"type": "object"},
        "defer_loading": True,
    }


# Claude Code 2.1.332 with tool search on (beta advanced-tool-use-2025-11-20, recorded through modelgate
# on 2026-12-03): its own tools, a placeholder that keeps deferred loading on, and MCP tools deferred
# (here 140 of them); a ToolSearch result loads one by a tool_reference.
DEFERRED_TOOLS: list[dict[str, Any]] = [
    {"name": "Read", "description": "Read a file.", "input_schema": {"type": "object"}},
    {"name": "ToolSearch", "description": "Fetch deferred tools.", "input_schema": {"type": "object"}},
    {**_deferred("DeferredToolPlaceholder"), "description": "Reserved placeholder; never call this tool."},
    *(_deferred(f"mcp__tracker__tool_{i}") for i in range(140)),
]
TOOL_SEARCH_TURNS: list[dict[str, Any]] = [
    {"role": "user", "content": [{"type": "text", "text": "open ticket 7"}]},
    {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "ToolSearch", "input": {"query": "ticket"}}
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": [{"type": "tool_reference", "tool_name": "mcp__tracker__tool_7"}],
            }
        ],
    },
]


def test_deferred_tools_are_offered_once_loaded(
    server: LiveServer, openai_upstream: FakeOpenAI, anthropic_up: AnthropicFake
) -> None:
    """A chat model sees the tools Anthropic's would: not the deferred ones until a tool search loads
    them (the request had 143 tools, over chat's 128: a 400 before), and the loading result as text."""
    body = {**CLAUDE_CODE_BODY, "messages": TOOL_SEARCH_TURNS, "tools": DEFERRED_TOOLS}
    r = post(server, {**body, "model": "thinker"})
    assert r.status_code == 200, r.text
    sent = openai_upstream.last
    assert [t["function"]["name"] for t in sent["tools"]] == ["Read", "ToolSearch", "mcp__tracker__tool_7"]
    assert sent["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "toolu_1",
        "content": "[tool loaded: mcp__tracker__tool_7]",
    }
    anthropic_up.add(Reply(body=load("anthropic_text.json")))
    assert post(server, {**body, "model": "claude-test"}).status_code == 200
    assert anthropic_up.last["tools"] == DEFERRED_TOOLS  # passed through as sent


def test_effort_is_dropped_and_named_on_a_model_that_does_not_reason(
    server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    r = post(server, {**CLAUDE_CODE_BODY, "model": "echo", "stream": True})
    assert r.status_code == 200, r.text
    assert "reasoning_effort" not in openai_upstream.last
    assert "output_config.effort" in r.headers["x-modelgate-dropped"].split(", ")
    assert "event: message_stop" in r.text


def test_claude_code_shape_translated_to_gemini(server: LiveServer, gemini_up: GeminiFake) -> None:
    gemini_up.add(Reply(body=load("gemini_text.json")))
    r = post(server, {**CLAUDE_CODE_BODY, "model": "gemini-test"})
    assert r.status_code == 200, r.text
    sent = gemini_up.last.json
    system_text = " ".join(p["text"] for p in sent["systemInstruction"]["parts"])
    assert "You are an agent." in system_text and "# Environment" in system_text


def test_output_format_becomes_response_format_on_chat(
    server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = {
        "model": "echo",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Where?"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    r = post(server, body)
    assert r.status_code == 200, r.text
    fmt = openai_upstream.last["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == schema


def test_output_format_becomes_gemini_response_schema(server: LiveServer, gemini_up: GeminiFake) -> None:
    gemini_up.add(Reply(body=load("gemini_json_schema.json")))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = {
        "model": "gemini-test",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Where?"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    r = post(server, body)
    assert r.status_code == 200, r.text
    gen = gemini_up.last.json["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert "responseSchema" in gen or "responseJsonSchema" in gen


def test_an_output_format_a_route_cannot_honour_is_a_clear_400(server: LiveServer) -> None:
    body = {
        "model": "echo",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Where?"}],
        "output_config": {"format": {"type": "yaml_schema", "schema": {}}},
    }
    r = post(server, body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and "output_config.format.type" in err["message"]


def test_web_search_and_search_result_history_become_text(
    server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    body = {"model": "echo", "max_tokens": 100, "messages": WEB_SEARCH_HISTORY}
    r = post(server, body)
    assert r.status_code == 200, r.text
    msgs = openai_upstream.last["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    said = msgs[1]["content"]
    assert '[web_search call: {"query":"python"}]' in said
    assert "Python News (https://python.org/news)" in said and "Python 3.15 is out." in said
    assert "EqgfCioIARgB" not in said  # encrypted content is for Anthropic only
    user = " ".join(p["text"] for p in msgs[2]["content"])
    assert "Team notes" in user and "We use Python 3.14." in user and "https://docs.example/kb/1" in user


def test_search_results_inside_a_tool_result_become_text(
    server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    body = {
        "model": "echo",
        "max_tokens": 100,
        "tools": [{"name": "kb", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "look it up"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "kb", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [
                            {
                                "type": "search_result",
                                "source": "kb://1",
                                "title": "Doc",
                                "content": [{"type": "text", "text": "the answer is 42"}],
                            }
                        ],
                    }
                ],
            },
        ],
    }
    r = post(server, body)
    assert r.status_code == 200, r.text
    tool = openai_upstream.last["messages"][-1]
    assert tool["role"] == "tool" and "the answer is 42" in tool["content"] and "Doc" in tool["content"]


def test_count_tokens_accepts_a_mid_conversation_system_message(server: LiveServer) -> None:
    body = {k: v for k, v in CLAUDE_CODE_BODY.items() if k not in ("max_tokens", "metadata")}
    r = requests.post(
        f"{server.url}/v1/messages/count_tokens",
        json={**body, "model": "echo"},
        headers={**HEADERS, "x-api-key": server.create_key()},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.json()["input_tokens"] > 0


def test_bad_key_is_not_retried(server: LiveServer) -> None:
    r = post(server, {**CLAUDE_CODE_BODY, "model": "echo"}, key="sk-wrong")
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert r.headers["x-should-retry"] == "false"


@pytest.mark.local_model
def test_claude_code_shape_on_the_local_model(server: LiveServer) -> None:
    """The README's ``ANTHROPIC_MODEL=smollm2 claude``: Claude Code offers tools to every model; the
    local model cannot call them, so they are left out and named, and it answers in text."""
    tools = [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}]
    body = {**CLAUDE_CODE_BODY, "model": "smollm2", "max_tokens": 8, "tools": tools, "stream": True}
    r = post(server, body)
    assert r.status_code == 200, r.text
    assert "event: message_stop" in r.text
    dropped = r.headers["x-modelgate-dropped"].split(", ")
    assert {"tools[Read]", "output_config.effort", "context_management"} <= set(dropped)


@pytest.mark.local_model
def test_output_format_is_constrained_on_the_local_model(server: LiveServer) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    body = {
        "model": "smollm2",
        "max_tokens": 24,
        "messages": [
            {"role": "user", "content": "Is the sky blue? Answer in JSON."},
            {"role": "system", "content": "Answer with the JSON object only."},
        ],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    r = post(server, body)
    assert r.status_code == 200, r.text
    text = "".join(b["text"] for b in r.json()["content"] if b["type"] == "text")
    assert isinstance(json.loads(text)["ok"], bool)


def test_a_forced_tool_on_a_route_without_tools_is_a_clear_400(server: LiveServer) -> None:
    tools = [{"name": "Read", "input_schema": {"type": "object"}}]
    body = {
        "model": "smollm2",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": tools,
        "tool_choice": {"type": "any"},
    }
    r = post(server, body)
    assert r.status_code == 400 and "tool" in r.json()["error"]["message"]


def test_an_agent_s_large_max_tokens_is_lowered_to_the_model_s_maximum(
    server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    """Claude Code asks for 32,000 (128,000 for its own models) whatever model it is pointed at; a
    cap the model cannot reach is lowered to its maximum (4,096 for echo), not refused."""
    r = post(server, {**CLAUDE_CODE_BODY, "model": "echo", "max_tokens": 32000})
    assert r.status_code == 200, r.text
    assert openai_upstream.last["max_tokens"] == 4096
