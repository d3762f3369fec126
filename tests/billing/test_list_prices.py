"""Exact credits at list price, per provider, through every door (chat, Messages, Responses;
pass-through and translated; streamed and not), from recorded-shape usage: cache writes 5m/1h,
cache reads, above and below a tier, server-tool uses, thinking.

The models are the built-in catalogue's (their providers pointed at protocol-level fakes), so the
prices are the catalogue's list prices; each expected figure is written out from the providers'
published prices (USD per million tokens; x USD/Mtok = 2x credits a token; 1 USD = 2,000,000
credits), not computed by the code under test. Charges are read from the ledger and must equal
the request-log row, the cost header / ``meta.usage`` and the balance change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from sqlalchemy import select

from modelgate.catalog.loader import load_catalog_files
from modelgate.store.schema import LedgerEntry, RequestLog
from tests.billing.helpers import account_state, db_read, wait_for
from tests.conftest import LiveServer
from tests.fakes import SSE, Reply, SSEReply
from tests.fakes.anthropic_server import AnthropicFake, anthropic_sse
from tests.fakes.gemini_server import GeminiFake, gemini_sse
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.responses_server import ResponsesFake
from tests.fakes.threaded import BackgroundLoop

KEYS = {"anthropic": "test-anthropic-key", "openai": "test-openai-key", "google": "test-gemini-key"}


def _gpt4o_pricing() -> str:
    """The built-in gpt-4o sheet, for the same model bought through the Responses upstream."""
    _, models = load_catalog_files(None, env={})
    sheet = next(m for m in models if m.id == "openai/gpt-4o").pricing
    return sheet.model_dump_json(exclude_none=True, exclude_defaults=True)


CONFIG = """
providers:
  anthropic: {{type: anthropic, base_url: "{anthropic}", api_key: {ak}, max_retries: 0}}
  openai: {{type: openai, base_url: "{openai}", api_key: {ok}, max_retries: 0}}
  google: {{type: gemini, base_url: "{google}", api_key: {gk}, max_retries: 0}}
  oair: {{type: openai, base_url: "{responses}", api_key: {ok}, max_retries: 0, options: {{responses: true}}}}
models:
  - id: openai/gpt-4o-responses
    info: {{name: GPT-4o via Responses, developer: Open AI, contextLength: 128000, outputMax: 16384}}
    pricing: {pricing}
    routes:
      - {{provider: oair, model: gpt-4o}}
"""


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    # One database kind: these tests are about prices, not storage (test_concurrency covers both).
    yield f"sqlite:///{tmp_path}/modelgate.db"


@pytest.fixture(scope="module")
def loop() -> Iterator[BackgroundLoop]:
    bg = BackgroundLoop()
    yield bg
    bg.close()


@pytest.fixture
def fakes(loop: BackgroundLoop, openai_upstream: FakeOpenAI) -> Iterator[dict[str, Any]]:
    made = {
        "anthropic": AnthropicFake(api_key=KEYS["anthropic"]),
        "google": GeminiFake(api_key=KEYS["google"]),
        "responses": ResponsesFake(api_key=KEYS["openai"]),
    }
    for fake in made.values():
        loop.run(fake.start())
    yield {**made, "openai": openai_upstream}
    for fake in made.values():
        loop.run(fake.stop())


@pytest.fixture
def server(make_live_server: Any, fakes: dict[str, Any]) -> LiveServer:
    config = CONFIG.format(
        anthropic=fakes["anthropic"].base_url,
        openai=fakes["openai"].base_url,
        google=fakes["google"].base_url,
        responses=fakes["responses"].base_url,
        ak=KEYS["anthropic"],
        ok=KEYS["openai"],
        gk=KEYS["google"],
        pricing=_gpt4o_pricing(),
    )
    live: LiveServer = make_live_server(config)
    return live


# ---- the doors --------------------------------------------------------------------------------


def _call(server: LiveServer, key: str, door: str, model: str, stream: bool) -> requests.Response:
    auth = {"Authorization": f"Bearer {key}"}
    if door == "chat":
        body: dict[str, Any] = {"model": model, "max_tokens": 1000, "stream": stream}
        body["messages"] = [{"role": "user", "content": "hi"}]
        if stream:
            body["stream_options"] = {"include_usage": True}
        r = requests.post(f"{server.url}/v1/chat/completions", json=body, headers=auth, timeout=30)
    elif door == "messages":
        body = {
            "model": model,
            "max_tokens": 1000,
            "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
        }
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        r = requests.post(f"{server.url}/v1/messages", json=body, headers=headers, timeout=30)
    else:
        body = {"model": model, "input": "hi", "max_output_tokens": 1000, "stream": stream, "store": False}
        r = requests.post(f"{server.url}/v1/responses", json=body, headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    assert ('"error"' not in r.text) if door != "responses" else ("response.failed" not in r.text)
    return r


def _charge(server: LiveServer, inference_id: str) -> tuple[int, RequestLog]:
    async def fn(conn: Any) -> Any:
        charge = (
            await conn.execute(select(LedgerEntry.credits).where(LedgerEntry.reference_id == inference_id))
        ).scalar()
        row = (await conn.execute(select(RequestLog).where(RequestLog.inference_id == inference_id))).first()
        return charge, row

    charge, row = wait_for(
        lambda: (lambda c: c if c[0] is not None and c[1] is not None else None)(db_read(server, fn))
    )
    return -charge, row


def _check(
    server: LiveServer, key: str, email: str, door: str, model: str, stream: bool, expected: int
) -> Any:
    before = account_state(server, email)["balance"]
    r = _call(server, key, door, model, stream)
    credits, row = _charge(server, r.headers["x-inference-id"])
    assert credits == expected, (door, model, stream, credits, expected)
    assert row.credits == expected  # charged == logged
    if not stream:
        assert int(r.headers["x-aimlapi-credits-used"]) == expected
    if door == "chat":  # meta.usage and usage.prompt_tokens_details agree with the charge
        frames = [line[6:] for line in r.text.splitlines() if line.startswith("data: {")]
        body = orjson.loads(frames[-1]) if stream else r.json()
        assert body["meta"]["usage"]["credits_used"] == expected
        assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == row.cached_tokens
        assert body["usage"]["prompt_tokens"] == row.prompt_tokens
    wait_for(lambda: account_state(server, email)["holds"] == 0)
    assert before - account_state(server, email)["balance"] == expected  # == balance delta
    return row


# ---- Anthropic ---------------------------------------------------------------------------------

# Claude Sonnet 4.5 list prices (USD/Mtok): input 3, 5m write 3.75, 1h write 6, read 0.30, output
# 15; prompts over 200k: 6, 7.50, 12, 0.60, 22.50. Web search $10 per 1,000 = 20,000 credits each.
SONNET_BELOW = {
    "input_tokens": 1_200,
    "cache_creation_input_tokens": 40_000,
    "cache_read_input_tokens": 120_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 30_000, "ephemeral_1h_input_tokens": 10_000},
    "output_tokens": 900,
    "server_tool_use": {"web_search_requests": 3},
}
SONNET_BELOW_CREDITS = 2 * (1_200 * 3 + 30_000 * 3.75 + 10_000 * 6 + 120_000 * 0.30 + 900 * 15) + 3 * 20_000
SONNET_ABOVE = {
    "input_tokens": 2_000,
    "cache_creation_input_tokens": 50_000,
    "cache_read_input_tokens": 170_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 50_000, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 1_000,
}
SONNET_ABOVE_CREDITS = 2 * (2_000 * 6 + 50_000 * 7.5 + 170_000 * 0.6 + 1_000 * 22.5)


def _anthropic_message(usage: dict[str, Any], *, thinking: bool = False) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "Done."}]
    if thinking:
        content.insert(0, {"type": "thinking", "thinking": "Let me think.", "signature": "sig"})
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {**usage, "service_tier": "standard"},
    }


def _anthropic_thinking_events() -> list[dict[str, Any]]:
    """A streamed thinking block (its tokens are in output_tokens: priced as output)."""
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}
    think = {"type": "thinking_delta", "thinking": "Let me think."}
    sig = {"type": "signature_delta", "signature": "sig"}
    return [
        {"event": "content_block_start", "data": block},
        {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 0, "delta": think}},
        {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 0, "delta": sig}},
        {"event": "content_block_stop", "data": {"type": "content_block_stop", "index": 0}},
    ]


def _anthropic_stream(usage: dict[str, Any]) -> SSEReply:
    start_usage = {k: v for k, v in usage.items() if k not in ("output_tokens", "server_tool_use")}
    events = [
        {
            "event": "message_start",
            "data": {
                "type": "message_start",
                "message": {
                    **_anthropic_message({}),
                    "content": [],
                    "stop_reason": None,
                    "usage": {**start_usage, "output_tokens": 1},
                },
            },
        },
        *_anthropic_thinking_events(),
        {
            "event": "content_block_start",
            "data": {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        },
        {
            "event": "content_block_delta",
            "data": {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "Done."},
            },
        },
        {"event": "content_block_stop", "data": {"type": "content_block_stop", "index": 1}},
        {
            "event": "message_delta",
            "data": {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {k: v for k, v in usage.items() if k in ("output_tokens", "server_tool_use")},
            },
        },
        {"event": "message_stop", "data": {"type": "message_stop"}},
    ]
    return anthropic_sse(events)


def test_anthropic_at_list_price_through_every_door(server: LiveServer, fakes: dict[str, Any]) -> None:
    email = "anthropic@example.com"
    key = server.create_key(email=email, usd=500.0)
    model = "claude-sonnet-4-5"
    assert SONNET_BELOW_CREDITS == 511_200 and SONNET_ABOVE_CREDITS == 1_023_000
    for door in ("messages", "chat", "responses"):  # Messages passes through; the others translate
        for stream in (False, True):
            for usage, expected in (
                (SONNET_BELOW, SONNET_BELOW_CREDITS),
                (SONNET_ABOVE, SONNET_ABOVE_CREDITS),
            ):
                fakes["anthropic"].add(
                    _anthropic_stream(usage)
                    if stream
                    else Reply(body=_anthropic_message(usage, thinking=True))
                )
                row = _check(server, key, email, door, model, stream, int(expected))
                assert (row.cache_write_5m_tokens, row.cache_write_1h_tokens) == (
                    usage["cache_creation"]["ephemeral_5m_input_tokens"],
                    usage["cache_creation"]["ephemeral_1h_input_tokens"],
                )
                assert row.cached_tokens == usage["cache_read_input_tokens"]
                assert row.tier == (1 if usage is SONNET_ABOVE else 0)
                assert row.uses == ('{"web_search":3}' if usage is SONNET_BELOW else None)
    # /v2/usage/detail and /v2/logs show what the spend is made of (12 requests: 6 below, 6 above)
    auth = {"Authorization": f"Bearer {key}"}
    detail = requests.get(f"{server.url}/v2/usage/detail?period=1d", headers=auth, timeout=60).json()
    (m,) = detail["models"]
    assert m["tokens"]["cache_write_1h"] == 6 * 10_000 and m["tokens"]["cache_write_5m"] == 6 * (
        30_000 + 50_000
    )
    assert m["tokens"]["cache_read"] == 6 * (120_000 + 170_000) and m["requests_above_base_tier"] == 6
    logs = requests.get(f"{server.url}/v2/logs?period=1d&limit=100", headers=auth, timeout=60).json()["data"]
    assert sorted(r["uses"].get("web_search", 0) for r in logs) == [0] * 6 + [3] * 6
    assert {r["tier"] for r in logs} == {0, 1} and all(r["overage"]["credits"] > 0 for r in logs)


# ---- OpenAI ------------------------------------------------------------------------------------

# GPT-4o list prices: input 2.50, cached input 1.25, output 10 (reasoning tokens are output, priced
# as such); web search $25 per 1,000 calls.
GPT4O_USAGE = {
    "prompt_tokens": 10_000,
    "completion_tokens": 500,
    "total_tokens": 10_500,
    "prompt_tokens_details": {"cached_tokens": 8_000, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 300, "audio_tokens": 0},
}
GPT4O_CREDITS = 2 * (2_000 * 2.5 + 8_000 * 1.25 + 500 * 10)


def _openai_reply(stream: bool) -> Reply | SSEReply:
    if not stream:
        return Reply(
            body={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-4o",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Done."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": GPT4O_USAGE,
            }
        )
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    return SSEReply(
        [
            SSE(
                {
                    **chunk,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": "Done."},
                            "finish_reason": None,
                        }
                    ],
                }
            ),
            SSE({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            SSE({**chunk, "choices": [], "usage": GPT4O_USAGE}),
            SSE("[DONE]"),
        ]
    )


# The Responses pass-through: 9,000 input (8,000 cached), 700 output (512 reasoning), 2 web searches.
RESPONSES_USAGE = {
    "input_tokens": 9_000,
    "input_tokens_details": {"cached_tokens": 8_000},
    "output_tokens": 700,
    "output_tokens_details": {"reasoning_tokens": 512},
    "total_tokens": 9_700,
}
RESPONSES_CREDITS = 2 * (1_000 * 2.5 + 8_000 * 1.25 + 700 * 10) + 2 * 50_000


def _response_object() -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "gpt-4o",
        "output": [
            {
                "type": "web_search_call",
                "id": "ws_1",
                "status": "completed",
                "action": {"type": "search", "query": "a"},
            },
            {
                "type": "web_search_call",
                "id": "ws_2",
                "status": "completed",
                "action": {"type": "search", "query": "b"},
            },
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
            },
        ],
        "usage": RESPONSES_USAGE,
    }


def _responses_reply(stream: bool) -> Reply | SSEReply:
    done = _response_object()
    if not stream:
        return Reply(body=done)
    created = {**done, "status": "in_progress", "output": [], "usage": None}
    return SSEReply(
        [
            SSE(
                {"type": "response.created", "sequence_number": 0, "response": created},
                event="response.created",
            ),
            SSE(
                {
                    "type": "response.output_text.delta",
                    "sequence_number": 1,
                    "item_id": "msg_1",
                    "output_index": 2,
                    "content_index": 0,
                    "delta": "Done.",
                },
                event="response.output_text.delta",
            ),
            SSE(
                {"type": "response.completed", "sequence_number": 2, "response": done},
                event="response.completed",
            ),
        ]
    )


def test_openai_at_list_price_through_every_door(server: LiveServer, fakes: dict[str, Any]) -> None:
    email = "openai@example.com"
    key = server.create_key(email=email, usd=100.0)
    assert GPT4O_CREDITS == 40_000 and RESPONSES_CREDITS == 139_000
    for door in ("chat", "messages", "responses"):  # chat native; Messages and Responses translate
        for stream in (False, True):
            fakes["openai"].add(_openai_reply(stream))
            row = _check(server, key, email, door, "gpt-4o", stream, int(GPT4O_CREDITS))
            assert (row.cached_tokens, row.reasoning_tokens) == (8_000, 300)
    for stream in (False, True):  # the Responses door passes through to a Responses upstream
        fakes["responses"].add(_responses_reply(stream))
        row = _check(
            server, key, email, "responses", "openai/gpt-4o-responses", stream, int(RESPONSES_CREDITS)
        )
        assert (row.cached_tokens, row.reasoning_tokens, row.uses) == (8_000, 512, '{"web_search":2}')


# ---- Google ------------------------------------------------------------------------------------

# Gemini 2.5 Pro list prices: input 1.25, cached 0.125, output (thinking included) 10; prompts over
# 200k: 2.50, 0.25, 15.
GEMINI_BELOW = {
    "promptTokenCount": 30_000,
    "cachedContentTokenCount": 20_000,
    "candidatesTokenCount": 400,
    "thoughtsTokenCount": 600,
    "totalTokenCount": 31_000,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 30_000}],
}
GEMINI_BELOW_CREDITS = 2 * (10_000 * 1.25 + 20_000 * 0.125 + 1_000 * 10)
GEMINI_ABOVE = {
    "promptTokenCount": 250_000,
    "cachedContentTokenCount": 100_000,
    "candidatesTokenCount": 100,
    "thoughtsTokenCount": 300,
    "totalTokenCount": 250_400,
}
GEMINI_ABOVE_CREDITS = 2 * (150_000 * 2.5 + 100_000 * 0.25 + 400 * 15)


def _gemini_reply(usage: dict[str, Any], stream: bool) -> Reply | SSEReply:
    def part(text: str, final: bool) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if final:
            cand["finishReason"] = "STOP"
        out = {"candidates": [cand], "modelVersion": "gemini-2.5-pro", "responseId": "r1"}
        return {**out, "usageMetadata": usage} if final else out

    if not stream:
        return Reply(body=part("Done.", True))
    return gemini_sse([part("Do", False), part("ne.", True)])


def test_gemini_at_list_price_through_every_door(server: LiveServer, fakes: dict[str, Any]) -> None:
    email = "gemini@example.com"
    key = server.create_key(email=email, usd=100.0)
    assert GEMINI_BELOW_CREDITS == 50_000 and GEMINI_ABOVE_CREDITS == 812_000
    for door in ("chat", "messages", "responses"):  # all translated
        for stream in (False, True):
            for usage, expected in (
                (GEMINI_BELOW, GEMINI_BELOW_CREDITS),
                (GEMINI_ABOVE, GEMINI_ABOVE_CREDITS),
            ):
                fakes["google"].add(_gemini_reply(usage, stream))
                row = _check(server, key, email, door, "gemini-2.5-pro", stream, int(expected))
                assert row.reasoning_tokens == usage["thoughtsTokenCount"]
                assert row.tier == (1 if usage is GEMINI_ABOVE else 0)
