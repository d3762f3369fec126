"""The Responses door accepts what current clients send (issue 20): Codex CLI's namespaced tools on
translated routes (flattened for chat, split back into ``name`` + ``namespace``), passed through
unchanged natively; unknown top-level fields and unknown headers tolerated everywhere."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import requests

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.fakes.responses_server import ResponsesFake

NAMESPACE: dict[str, Any] = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for spawning and managing sub-agents.",
    "tools": [
        {
            "type": "function",
            "name": "close_agent",
            "description": "Close an agent.",
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"target": {"type": "string"}},
                "required": ["target"],
            },
        },
        {"type": "custom", "name": "freeform", "description": "raw text in"},
    ],
}
EXEC: dict[str, Any] = {
    "type": "function",
    "name": "exec_command",
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
}


def _call(name: str, args: str) -> dict[str, Any]:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": name, "arguments": args}}],
    }
    usage = {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": usage,
    }


def test_namespaced_tools_reach_a_chat_model_and_come_back_apart(
    server: LiveServer, client: openai.OpenAI, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.script(Scripted(body=_call("multi_agent_v1__close_agent", '{"target":"a1"}')))
    raw = client.responses.with_raw_response.create(
        model="echo", input="close a1", tools=[EXEC, NAMESPACE], store=False
    )
    resp = raw.parse()
    sent = openai_upstream.last
    names = [t["function"]["name"] for t in sent["tools"]]
    assert names == ["exec_command", "multi_agent_v1__close_agent"]
    (call,) = [i for i in resp.output if i.type == "function_call"]
    assert call.name == "close_agent" and call.namespace == "multi_agent_v1"  # type: ignore[attr-defined]
    assert raw.headers["x-modelgate-dropped"] == "tools[multi_agent_v1.custom:freeform]"


def test_namespaced_call_in_the_history_is_joined_for_chat(
    server: LiveServer, client: openai.OpenAI, openai_upstream: FakeOpenAI
) -> None:
    history: list[Any] = [
        {"role": "user", "content": "close a1"},
        {
            "type": "function_call",
            "call_id": "call_9",
            "name": "close_agent",
            "namespace": "multi_agent_v1",
            "arguments": '{"target":"a1"}',
        },
        {"type": "function_call_output", "call_id": "call_9", "output": "closed"},
    ]
    client.responses.create(model="echo", input=history, tools=[NAMESPACE], store=False)
    msgs = openai_upstream.last["messages"]
    assert msgs[1]["tool_calls"][0]["function"]["name"] == "multi_agent_v1__close_agent"
    assert msgs[2] == {"role": "tool", "tool_call_id": "call_9", "content": "closed"}


def test_streamed_namespaced_call_comes_back_apart(
    server: LiveServer, client: openai.OpenAI, openai_upstream: FakeOpenAI
) -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    call = {"index": 0, "id": "call_9", "type": "function"}
    fn = {"name": "multi_agent_v1__close_agent", "arguments": '{"target":"a1"}'}
    chunks: list[Any] = [
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{**call, "function": fn}]}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}},
        b"[DONE]",
    ]
    openai_upstream.script(Scripted(chunks=chunks))
    with client.responses.stream(model="echo", input="close a1", tools=[NAMESPACE], store=False) as stream:
        final = stream.get_final_response()
    (item,) = final.output
    assert item.type == "function_call" and item.name == "close_agent"
    assert item.namespace == "multi_agent_v1"  # type: ignore[union-attr]


def test_namespaced_tools_pass_through_unchanged(
    server: LiveServer, client: openai.OpenAI, responses_up: ResponsesFake
) -> None:
    client.responses.create(model="gpt-fake", input="hi", tools=[EXEC, NAMESPACE], store=False)
    assert responses_up.last["tools"] == [EXEC, NAMESPACE]


def test_unknown_fields_and_headers_are_tolerated(
    server: LiveServer, openai_upstream: FakeOpenAI, responses_up: ResponsesFake
) -> None:
    key = server.create_key()
    for model in ("echo", "gpt-fake"):
        r = requests.post(
            f"{server.url}/v1/responses",
            json={
                "model": model,
                "input": "hi",
                "store": False,
                "client_metadata": {"x-codex-turn-metadata": "{}"},
                "prompt_cache_key": "k1",
                "a_field_from_2030": {"nested": True},
            },
            headers={
                "Authorization": f"Bearer {key}",
                "x-codex-beta-features": "remote_compaction_v2",
                "openai-beta": "responses=made-up-2099",
            },
            timeout=30,
        )
        assert r.status_code == 200, (model, r.text)
    assert responses_up.last["a_field_from_2030"] == {"nested": True}  # native: forwarded as sent


def test_a_mid_conversation_developer_message_stays_in_place(
    server: LiveServer, client: openai.OpenAI, openai_upstream: FakeOpenAI
) -> None:
    items: list[Any] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "developer", "content": "From now on, answer in French."},
        {"role": "user", "content": "bye"},
    ]
    client.responses.create(model="echo", input=items, store=False, reasoning={"effort": "high"})
    msgs = openai_upstream.last["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "system", "user"]


@pytest.mark.local_model
def test_offered_tools_are_left_out_for_a_model_that_cannot_call_them(server: LiveServer) -> None:
    r = requests.post(
        f"{server.url}/v1/responses",
        json={"model": "smollm2", "input": "Say hi", "max_output_tokens": 8, "tools": [EXEC, NAMESPACE]},
        headers={"Authorization": f"Bearer {server.create_key()}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    dropped = r.headers["x-modelgate-dropped"].split(", ")
    assert {"tools[exec_command]", "tools[multi_agent_v1__close_agent]"} <= set(dropped)
    assert r.json()["tools"] == []


def test_a_forced_tool_on_a_model_without_tools_is_a_clear_400(server: LiveServer) -> None:
    r = requests.post(
        f"{server.url}/v1/responses",
        json={"model": "smollm2", "input": "hi", "tools": [EXEC], "tool_choice": "required"},
        headers={"Authorization": f"Bearer {server.create_key()}"},
        timeout=30,
    )
    assert r.status_code == 400 and "tool" in r.json()["error"]["message"]


# Codex CLI 0.171.0's request (`codex exec`, recorded through modelgate on 2026-12-03), its prompt cut
# short: every top-level field and value as sent.
CODEX_0_171: dict[str, Any] = {
    "model": "echo",
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "You are Codex."}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Change the colour."}],
        },
    ],
    "tools": [EXEC, NAMESPACE, {"type": "web_search", "external_web_access": True}],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "01a23cbd-5036-7103-8803-7db7ed0124b2",
    "client_metadata": {
        "turn_id": "01a23cbd-5073-7260-91ad-995765cb17d9",
        "session_id": "01a23cbd-5036-7103-8803-7db7ed0124b2",
        "x-codex-window-id": "01a23cbd-5036-7103-8803-7db7ed0124b2:0",
    },
}


def test_codex_fields_a_chat_route_leaves_out_are_named(
    server: LiveServer, openai_upstream: FakeOpenAI, responses_up: ResponsesFake
) -> None:
    """A translated route carries none of Codex's cache key, ``include`` or ``client_metadata`` (a
    strict chat upstream refuses unknown fields) and says so, as the Messages door does for Claude
    Code's ``context_management``; a pass-through route forwards them as sent and names nothing."""
    headers = {"Authorization": f"Bearer {server.create_key()}"}
    r = requests.post(f"{server.url}/v1/responses", json=CODEX_0_171, headers=headers, timeout=30)
    assert r.status_code == 200 and "response.completed" in r.text, r.text
    sent = openai_upstream.last
    assert not {"prompt_cache_key", "include", "client_metadata"} & set(sent.json)
    assert r.headers["x-modelgate-dropped"] == (
        "tools[multi_agent_v1.custom:freeform], tools[web_search], prompt_cache_key, include, client_metadata"
    )
    assert r.headers["x-modelgate-dropped-tools"] == "multi_agent_v1.custom:freeform, web_search"
    native = requests.post(
        f"{server.url}/v1/responses", json={**CODEX_0_171, "model": "gpt-fake"}, headers=headers, timeout=30
    )
    assert native.status_code == 200, native.text
    assert "x-modelgate-dropped" not in native.headers
    up = responses_up.last.json
    assert up["prompt_cache_key"] == CODEX_0_171["prompt_cache_key"]
    assert up["client_metadata"] == CODEX_0_171["client_metadata"]
