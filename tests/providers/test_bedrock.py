"""Bedrock specifics (Converse mapping, event-stream exceptions, SigV4 refused, the credential chain,
Claude through InvokeModel) against the Bedrock fake, which recomputes every signature itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelgate.errors import InvalidRequestError, UpstreamConnectionError, UpstreamStatusError
from modelgate.providers.base import Chunk, Provider, ProviderCall, ProviderContext
from modelgate.providers.registry import ProviderTypeRegistry
from tests.fakes import SSE, Reply, SSEReply, load
from tests.fakes.bedrock_server import BedrockFake, anthropic_chunks, converse_stream, converse_text
from tests.fakes.calls import build_call, provider_config

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def _make(
    fake: BedrockFake, type_: str = "bedrock", env: dict[str, str] | None = None, **options: Any
) -> Provider:
    opts: dict[str, Any] = {"region": fake.region}
    if env is None:
        opts |= {"access_key_id": fake.access_key, "secret_access_key": fake.secret_key}
    config = provider_config(type_, fake.url, api_key=None, options={**opts, **options})
    provider: Provider = ProviderTypeRegistry.with_defaults().factory(type_)(
        "aws", config, ProviderContext(environ=env or {})
    )
    return provider


def _call(body: dict[str, Any]) -> ProviderCall:
    call = build_call("anthropic/claude-sonnet-4.5", body)
    call.upstream_model = MODEL
    return call


@pytest.fixture
async def fake() -> AsyncIterator[BedrockFake]:
    async with BedrockFake() as f:
        yield f


async def _collect(p: Provider, call: ProviderCall) -> list[Chunk]:
    return [c async for c in p.stream(call)]


async def test_converse_request_mapping_and_signed_path(fake: BedrockFake) -> None:
    p = _make(fake)
    fake.add(Reply(body=converse_text()))
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]
    body = {
        "messages": messages,
        "tools": TOOLS,
        "tool_choice": "required",
        "temperature": 0.5,
        "stop": ["END"],
        "max_tokens": 77,
    }
    try:
        result = await p.complete(_call(body))
    finally:
        await p.aclose()
    assert result.usage.prompt_tokens == 9 and result.choices[0]["message"]["content"] == "Hello there"
    assert fake.model_and_op() == (MODEL, "converse")
    sent = fake.last.json
    assert sent["system"] == [{"text": "be brief"}]
    assert sent["inferenceConfig"] == {"maxTokens": 77, "temperature": 0.5, "stopSequences": ["END"]}
    user, assistant, result_turn = sent["messages"]
    assert user["content"][1] == {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
    assert assistant["content"] == [
        {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Oslo"}}}
    ]
    assert result_turn == {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}}],
    }
    assert sent["toolConfig"]["toolChoice"] == {"any": {}}
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}
    assert fake.verified == 1


async def test_converse_tool_call_answer_and_stream(fake: BedrockFake) -> None:
    p = _make(fake)
    answer = converse_text()
    answer["output"]["message"]["content"] = [
        {"toolUse": {"toolUseId": "tu1", "name": "get_weather", "input": {"city": "Oslo"}}}
    ]
    answer["stopReason"] = "tool_use"
    fake.add(Reply(body=answer))
    events = [
        SSE({"role": "assistant"}, event="messageStart"),
        SSE(
            {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tu2", "name": "get_weather"}}},
            event="contentBlockStart",
        ),
        SSE({"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"city":'}}}, event="contentBlockDelta"),
        SSE({"contentBlockIndex": 0, "delta": {"toolUse": {"input": '"Oslo"}'}}}, event="contentBlockDelta"),
        SSE({"contentBlockIndex": 0}, event="contentBlockStop"),
        SSE({"stopReason": "tool_use"}, event="messageStop"),
        SSE({"usage": {"inputTokens": 20, "outputTokens": 8, "cacheReadInputTokens": 5}}, event="metadata"),
    ]
    fake.add(SSEReply(events))
    try:
        whole = await p.complete(_call({"messages": [{"role": "user", "content": "w?"}], "tools": TOOLS}))
        chunks = await _collect(
            p, _call({"messages": [{"role": "user", "content": "w?"}], "tools": TOOLS, "stream": True})
        )
    finally:
        await p.aclose()
    (choice,) = whole.choices
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert orjson.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    args = "".join(
        tc["function"].get("arguments", "")
        for ch in chunks
        for c in ch.choices
        for tc in c["delta"].get("tool_calls", [])
    )
    assert orjson.loads(args) == {"city": "Oslo"}
    assert [c["finish_reason"] for ch in chunks for c in ch.choices if c["finish_reason"]] == ["tool_calls"]
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens) == (
        25,
        5,
        8,
    )


async def test_exception_frame_after_200_is_typed(fake: BedrockFake) -> None:
    p = _make(fake)
    reply = converse_stream()
    reply.events.insert(2, SSE({"message": "Too many tokens"}, event="exception:throttlingException"))
    fake.add(reply)
    try:
        with pytest.raises(UpstreamStatusError) as info:
            await _collect(p, _call({"messages": [{"role": "user", "content": "hi"}], "stream": True}))
    finally:
        await p.aclose()
    assert (info.value.upstream_status, info.value.status_code, info.value.retryable) == (429, 429, True)


async def test_stream_cut_inside_a_frame(fake: BedrockFake) -> None:
    p = _make(fake)
    reply = converse_stream()
    reply.events = reply.events[:2]
    reply.tail = b"\x00\x00\x00\x40\x00\x00"  # half a prelude, then the body ends
    fake.add(reply)
    try:
        with pytest.raises(UpstreamConnectionError):
            await _collect(p, _call({"messages": [{"role": "user", "content": "hi"}], "stream": True}))
    finally:
        await p.aclose()


async def test_wrong_secret_is_refused_by_the_signature_check(fake: BedrockFake) -> None:
    p = _make(fake, secret_access_key="not-the-secret")
    fake.add(Reply(body=converse_text()))
    try:
        with pytest.raises(UpstreamStatusError) as info:
            await p.complete(_call({"messages": [{"role": "user", "content": "hi"}]}))
    finally:
        await p.aclose()
    assert (info.value.upstream_status, info.value.status_code, info.value.retryable) == (403, 502, False)
    assert fake.verified == 0 and fake.pending == 1


async def test_credentials_from_the_shared_file_profile(tmp_path: Path) -> None:
    async with BedrockFake(session_token="tok-9") as fake:
        shared = tmp_path / "credentials"
        shared.write_text(
            f"[team]\naws_access_key_id = {fake.access_key}\naws_secret_access_key = {fake.secret_key}\n"
            "aws_session_token = tok-9\n"
        )
        env = {"AWS_SHARED_CREDENTIALS_FILE": str(shared), "AWS_PROFILE": "team", "HOME": str(tmp_path)}
        p = _make(fake, env=env)
        fake.add(Reply(body=converse_text()))
        try:
            await p.complete(_call({"messages": [{"role": "user", "content": "hi"}]}))
        finally:
            await p.aclose()
        assert fake.verified == 1 and fake.last.headers["X-Amz-Security-Token"] == "tok-9"


async def test_http_image_url_is_refused_before_any_call(fake: BedrockFake) -> None:
    p = _make(fake)
    msg = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
    try:
        with pytest.raises(InvalidRequestError):
            await p.complete(_call({"messages": [msg]}))
    finally:
        await p.aclose()
    assert fake.requests == []


async def test_claude_invoke_chat_and_messages_passthrough(fake: BedrockFake) -> None:
    p = _make(fake, "bedrock-anthropic")
    try:
        fake.add(Reply(body=load("anthropic_text.json")))
        await p.complete(_call({"messages": [{"role": "user", "content": "hi"}]}))
        sent = fake.last.json
        assert (
            sent["anthropic_version"] == "bedrock-2023-05-31" and "model" not in sent and "stream" not in sent
        )
        assert fake.model_and_op() == (MODEL, "invoke")

        fake.add(anthropic_chunks(load("anthropic_stream_text.json")))
        body = orjson.dumps(
            {
                "model": MODEL,
                "max_tokens": 50,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
        )
        headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "context-1m-2025-08-07"}
        events = [e async for e in p.passthrough_stream("anthropic-messages", body, headers)]  # type: ignore[attr-defined]
    finally:
        await p.aclose()
    assert fake.model_and_op() == (MODEL, "invoke-with-response-stream")
    assert fake.last.json["anthropic_beta"] == ["context-1m-2025-08-07"] and "stream" not in fake.last.json
    assert events[0].frame.startswith(b"event: message_start\ndata: {")
    assert events[-1].kind == "message_stop"
    usage = [e.usage for e in events if e.usage is not None][-1]
    assert usage.completion_tokens > 0 and fake.verified == 2


async def test_tool_history_keeps_a_tool_config(fake: BedrockFake) -> None:
    """Bedrock refuses toolUse/toolResult blocks without a toolConfig: a history with tool calls
    declares tools even when the request offers none or says tool_choice none."""
    p = _make(fake)
    history = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]
    fake.add(Reply(body=converse_text()), Reply(body=converse_text()), Reply(body=converse_text()))
    try:
        await p.complete(_call({"messages": history}))
        assert fake.last.json["toolConfig"] == {
            "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]
        }
        await p.complete(_call({"messages": history, "tools": TOOLS, "tool_choice": "none"}))
        assert "toolChoice" not in fake.last.json["toolConfig"]
        await p.complete(_call({"messages": history[:1], "tools": TOOLS, "tool_choice": "none"}))
        assert "toolConfig" not in fake.last.json
    finally:
        await p.aclose()
