"""The contract every network adapter keeps, run against each one's protocol-level fake.

One kit per provider says how its upstream answers (a whole text answer, a text stream, an error
body); the tests below are the same for all: the Protocol and its flags, a whole answer, a stream
with exactly one finish and usage last, upstream HTTP errors mapped to the same statuses and
retryability, Retry-After kept, malformed bodies and events, a reset mid-stream, a slow first byte.
Per-provider files keep only what is specific to one protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from modelgate.errors import (
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from modelgate.providers.base import Chunk, Provider, ProviderCall, ProviderContext, undeclared
from modelgate.providers.registry import ProviderTypeRegistry
from tests.fakes import SSE, Reply, ScriptedServer, SSEReply, load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_error, anthropic_sse
from tests.fakes.azure_server import AzureFake
from tests.fakes.bedrock_server import (
    BedrockFake,
    anthropic_chunks,
    bedrock_error,
    converse_stream,
    converse_text,
)
from tests.fakes.calls import build_call, provider_config
from tests.fakes.gemini_server import GeminiFake, gemini_error, gemini_sse
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.vertex_server import VertexFake

HI = [{"role": "user", "content": "Hello"}]


def _openai_text() -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }


def _openai_stream(**kw: Any) -> SSEReply:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    words = ["Hello", " there"]
    events = [
        SSE(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                ],
            }
        )
    ]
    events += [
        SSE({**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
        for w in words
    ]
    events += [
        SSE({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        SSE(
            {**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}
        ),
        SSE("[DONE]"),
    ]
    return SSEReply(events, **kw)


def _openai_error(status: int) -> Reply:
    return Reply(
        status=status, body={"error": {"message": f"upstream said {status}", "type": "x", "code": None}}
    )


def _no_options(server: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Kit:
    type: str
    fake: Callable[[], ScriptedServer]
    key: str | None
    model: str
    text: Callable[[], Reply]
    stream: Callable[..., SSEReply]
    error: Callable[[int], Reply]
    first_event: Callable[[], SSE]
    options: Callable[[Any], dict[str, Any]] = _no_options  # the provider's options, given the fake
    upstream: str | None = None  # the upstream model id, when not the catalogue route's


def _entra(server: Any) -> dict[str, Any]:
    secret = {"tenant_id": "tenant-1", "client_id": "client-1", "client_secret": "secret-1"}
    return {"entra": {**secret, "authority": server.url}}


def _aws(session_token: str | None = None) -> Callable[[Any], dict[str, Any]]:
    def options(server: Any) -> dict[str, Any]:
        keys = {"access_key_id": server.access_key, "secret_access_key": server.secret_key}
        return {
            "region": server.region,
            **keys,
            **({"session_token": session_token} if session_token else {}),
        }

    return options


BEDROCK_CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"  # a ':' the path must encode


KITS = {
    "openai": Kit(
        "openai",
        FakeOpenAI,
        "sk-test",
        "openai/gpt-4o",
        lambda: Reply(body=_openai_text()),
        _openai_stream,
        _openai_error,
        lambda: _openai_stream().events[0],
    ),
    "anthropic": Kit(
        "anthropic",
        lambda: AnthropicFake(api_key="k"),
        "k",
        "anthropic/claude-sonnet-4.5",
        lambda: Reply(body=load("anthropic_text.json")),
        lambda **kw: anthropic_sse(load("anthropic_stream_text.json"), **kw),
        anthropic_error,
        lambda: SSE(load("anthropic_stream_text.json")[0]["data"], event="message_start"),
    ),
    "gemini": Kit(
        "gemini",
        lambda: GeminiFake(api_key="k"),
        "k",
        "google/gemini-2.5-pro",
        lambda: Reply(body=load("gemini_text.json")),
        lambda **kw: gemini_sse(load("gemini_stream_text.json"), **kw),
        gemini_error,
        lambda: SSE(load("gemini_stream_text.json")[0]),
    ),
    "azure": Kit(
        "azure",
        lambda: AzureFake(api_key="k", deployments=("gpt-4o",)),
        "k",
        "openai/gpt-4o",
        lambda: Reply(body=_openai_text()),
        _openai_stream,
        _openai_error,
        lambda: _openai_stream().events[0],
    ),
    "azure-entra": Kit(
        "azure",
        lambda: AzureFake(api_key=None, deployments=("gpt-4o",)),
        None,
        "openai/gpt-4o",
        lambda: Reply(body=_openai_text()),
        _openai_stream,
        _openai_error,
        lambda: _openai_stream().events[0],
        options=_entra,
    ),
    "vertex": Kit(
        "vertex",
        VertexFake,
        None,
        "google/gemini-2.5-pro",
        lambda: Reply(body=load("gemini_text.json")),
        lambda **kw: gemini_sse(load("gemini_stream_text.json"), **kw),
        gemini_error,
        lambda: SSE(load("gemini_stream_text.json")[0]),
        options=lambda server: server.provider_options(),
    ),
    "vertex-anthropic": Kit(
        "vertex-anthropic",
        VertexFake,
        None,
        "anthropic/claude-sonnet-4.5",
        lambda: Reply(body=load("anthropic_text.json")),
        lambda **kw: anthropic_sse(load("anthropic_stream_text.json"), **kw),
        anthropic_error,
        lambda: SSE(load("anthropic_stream_text.json")[0]["data"], event="message_start"),
        options=lambda server: server.provider_options(),
    ),
    "bedrock": Kit(
        "bedrock",
        BedrockFake,
        None,
        "anthropic/claude-sonnet-4.5",
        lambda: Reply(body=converse_text()),
        converse_stream,
        bedrock_error,
        lambda: SSE({"role": "assistant"}, event="messageStart"),
        options=_aws(),
        upstream=BEDROCK_CLAUDE,
    ),
    "bedrock-anthropic": Kit(
        "bedrock-anthropic",
        lambda: BedrockFake(session_token="session-1"),
        None,
        "anthropic/claude-sonnet-4.5",
        lambda: Reply(body=load("anthropic_text.json")),
        lambda **kw: anthropic_chunks(load("anthropic_stream_text.json"), **kw),
        bedrock_error,
        lambda: SSE(load("anthropic_stream_text.json")[0]["data"], event="message_start"),
        options=_aws("session-1"),
        upstream=BEDROCK_CLAUDE,
    ),
}


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
async def fake(kit: Kit) -> AsyncIterator[ScriptedServer]:
    server = kit.fake()
    await server.start()
    yield server
    await server.stop()


def _base_url(server: ScriptedServer) -> str:
    return str(server.base_url)  # type: ignore[attr-defined]


def make(kit: Kit, server: ScriptedServer, **timeouts: float) -> Provider:
    config = provider_config(
        kit.type, _base_url(server), api_key=kit.key, options=kit.options(server), **timeouts
    )
    provider: Provider = ProviderTypeRegistry.with_defaults().factory(kit.type)(
        kit.type, config, ProviderContext()
    )
    return provider


@pytest.fixture
async def provider(kit: Kit, fake: ScriptedServer) -> AsyncIterator[Provider]:
    p = make(kit, fake)
    yield p
    await p.aclose()


def call(kit: Kit, *, stream: bool = False) -> ProviderCall:
    c = build_call(kit.model, {"messages": HI, "stream": stream})
    c.upstream_model = kit.upstream or c.upstream_model
    return c


async def collect(provider: Provider, c: ProviderCall) -> list[Chunk]:
    return [chunk async for chunk in provider.stream(c)]


async def test_protocol_and_flags(provider: Provider) -> None:
    assert isinstance(provider, Provider)
    assert undeclared(provider) == []
    for flag in (
        "supports_tools",
        "supports_json_schema",
        "supports_streaming",
        "supports_vision",
        "supports_embeddings",
        "forwards_unknown_fields",
        "drain_on_disconnect",
    ):
        assert isinstance(getattr(provider, flag), bool), flag
    assert isinstance(provider.dialects, frozenset)


async def test_whole_answer(kit: Kit, fake: ScriptedServer, provider: Provider) -> None:
    fake.add(kit.text())
    result = await provider.complete(call(kit))
    (choice,) = result.choices
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length", "tool_calls", "content_filter")
    u = result.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0 and u.cached_tokens <= u.prompt_tokens


async def test_stream_has_one_finish_and_usage_last(
    kit: Kit, fake: ScriptedServer, provider: Provider
) -> None:
    fake.add(kit.stream())
    chunks = await collect(provider, call(kit, stream=True))
    text = "".join(c["delta"].get("content") or "" for ch in chunks for c in ch.choices)
    finishes = [c["finish_reason"] for ch in chunks for c in ch.choices if c.get("finish_reason")]
    assert text and finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert all(ch.usage is None for ch in chunks[:-1])


@pytest.mark.parametrize(
    ("status", "client_status", "retryable"),
    [
        (400, 400, False),
        (401, 502, False),
        (403, 502, False),
        (404, 404, False),
        (429, 429, True),
        (500, 502, True),
        (503, 503, True),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_status_errors(
    kit: Kit,
    fake: ScriptedServer,
    provider: Provider,
    status: int,
    client_status: int,
    retryable: bool,
    stream: bool,
) -> None:
    fake.add(kit.error(status))
    with pytest.raises(UpstreamStatusError) as info:
        if stream:
            await collect(provider, call(kit, stream=True))
        else:
            await provider.complete(call(kit))
    err = info.value
    assert (err.upstream_status, err.status_code, err.retryable) == (status, client_status, retryable)
    assert err.provider == kit.type or err.provider
    # The client reads a message of ours naming the provider and the status; the upstream's own
    # wording stays on the error (sanitised) for the log and pass-through doors.
    assert f"upstream {err.provider} " in err.message and f" {status}: " in err.message
    assert err.upstream_message
    if status not in (400, 413, 422):
        assert err.upstream_message not in err.message


async def test_retry_after_is_kept(kit: Kit, fake: ScriptedServer, provider: Provider) -> None:
    reply = kit.error(429)
    if isinstance(reply.body, dict) and isinstance(reply.body.get("error"), dict):
        reply.body["error"].pop("details", None)  # Gemini's own RetryInfo would win (its own test)
    reply.headers["retry-after"] = "7"
    fake.add(reply)
    with pytest.raises(UpstreamStatusError) as info:
        await provider.complete(call(kit))
    assert info.value.retry_after == 7.0


async def test_malformed_json_body(kit: Kit, fake: ScriptedServer, provider: Provider) -> None:
    fake.add(Reply(body=b'{"id": "x", "choices": ['))
    with pytest.raises(UpstreamProtocolError):
        await provider.complete(call(kit))


async def test_malformed_stream_event(kit: Kit, fake: ScriptedServer, provider: Provider) -> None:
    first = kit.first_event()
    fake.add(SSEReply([first, SSE("{not json", event=first.event)]))
    with pytest.raises(UpstreamProtocolError):
        await collect(provider, call(kit, stream=True))


async def test_connection_reset_mid_stream(kit: Kit, fake: ScriptedServer, provider: Provider) -> None:
    fake.add(kit.stream(reset_after=2))
    with pytest.raises(UpstreamConnectionError) as info:
        await collect(provider, call(kit, stream=True))
    assert info.value.retryable is True


@pytest.mark.parametrize("stream", [False, True])
async def test_slow_first_byte_times_out(kit: Kit, fake: ScriptedServer, stream: bool) -> None:
    p = make(kit, fake, connect=0.2, first_byte=0.2)
    fake.add(kit.stream(delay=1.5) if stream else Reply(body=kit.text().body, delay=1.5))
    try:
        with pytest.raises(UpstreamTimeoutError) as info:
            if stream:
                await collect(p, call(kit, stream=True))
            else:
                await p.complete(call(kit))
    finally:
        await p.aclose()
    assert (info.value.status_code, info.value.retryable) == (504, True)
