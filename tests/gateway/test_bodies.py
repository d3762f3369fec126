"""Body logging's texts (gateway/bodies.py): credentials masked at any depth, inline media
summarised, each text cut on a character boundary with the cut said, a stream's answer assembled
(chat chunks with tool calls, Messages content blocks, a Responses stream's final object), and the
in-memory sink writing the rows in a batch."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
from sqlalchemy import select

from modelgate.gateway.bodies import MASK, TRUNCATED, BodyLog, answer_text, bounded, masked, request_text
from modelgate.providers.base import Chunk, Completion, Embeddings, RawEvent, RawReply, Usage
from modelgate.store.db import Database
from modelgate.store.log_sink import RequestLogSink
from modelgate.store.schema import RequestBody
from modelgate.store.site_settings import SiteSettings


def test_credentials_are_masked_at_any_depth_and_token_counts_are_not() -> None:
    body = {
        "model": "m",
        "api_key": "sk-1",
        "max_tokens": 100,
        "max_completion_tokens": 5,
        "tools": [{"type": "mcp", "headers": {"Authorization": "Bearer x"}, "authorization_token": "t"}],
        "extra": {"client_secret": "s", "password": "p", "x-api-key": "k", "prompt_cache_key": "keep"},
    }
    out = masked(body)
    text = orjson.dumps(out).decode()
    for secret in ("sk-1", "Bearer x", '"t"', '"s"', '"p"', '"k"'):
        assert secret not in text
    assert out["max_tokens"] == 100 and out["max_completion_tokens"] == 5
    assert out["tools"][0]["headers"]["Authorization"] == MASK
    assert out["extra"]["prompt_cache_key"] == "keep"


def test_inline_media_is_summarised_and_text_is_not() -> None:
    image = "data:image/png;base64," + "iVBORw0KGgo" * 100
    prose = "word " * 300
    out = masked({"url": image, "text": prose, "b64": "QUJD" * 200})
    assert out["url"].startswith("[image/png, ") and "not stored" in out["url"]
    assert out["text"] == prose
    assert "not stored" in out["b64"]


def test_bounded_cuts_on_a_character_boundary_and_says_so() -> None:
    assert bounded("short", 1024) == ("short", False)
    text, cut = bounded("é" * 1000, 1001)  # 2 bytes each: the cut falls inside a character
    assert cut and text.endswith(TRUNCATED)
    assert len(text[: -len(TRUNCATED)].encode()) == 1000


def test_request_text_is_json_and_masked() -> None:
    text = request_text(b'{"messages": [{"role": "user", "content": "hi"}], "api_key": "sk-x"}')
    assert '"content": "hi"' in text and "sk-x" not in text
    assert request_text(b"not json \xff").startswith("not json")


def test_whole_answers() -> None:
    done = Completion(
        [{"index": 0, "message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"}], Usage()
    )
    assert orjson.loads(answer_text(done) or "") == {
        "role": "assistant",
        "content": "Paris",
        "finish_reason": "stop",
    }
    reply = RawReply(b'{"content": [{"type": "text", "text": "Bonjour"}]}', Usage())
    assert "Bonjour" in (answer_text(reply) or "")
    assert "2 embedding vector(s) of 3 dimensions" in (answer_text(Embeddings([[0.1] * 3] * 2, 4)) or "")


def test_a_chat_stream_is_assembled_with_its_tool_calls() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> Chunk:
        return Chunk([{"index": 0, "delta": delta, "finish_reason": finish}])

    chunks = [
        chunk({"role": "assistant", "content": "Let me "}),
        chunk({"content": "check."}),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "function": {"name": "weather", "arguments": '{"ci'}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
        chunk({}, "tool_calls"),
        Chunk([], Usage(prompt_tokens=3, completion_tokens=4)),
    ]
    out = orjson.loads(answer_text(chunks) or "")
    assert out["content"] == "Let me check." and out["finish_reason"] == "tool_calls"
    assert out["tool_calls"] == [
        {
            "type": "function",
            "id": "call_1",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
        }
    ]


def _frame(kind: str, data: dict[str, Any]) -> RawEvent:
    return RawEvent(f"event: {kind}\ndata: {orjson.dumps(data).decode()}\n\n".encode(), kind)


def test_a_messages_stream_is_assembled_from_its_content_blocks() -> None:
    def start(index: int, block: dict[str, Any]) -> RawEvent:
        return _frame(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
        )

    def delta(index: int, part: dict[str, Any]) -> RawEvent:
        return _frame("content_block_delta", {"type": "content_block_delta", "index": index, "delta": part})

    events = [
        _frame("message_start", {"type": "message_start", "message": {"usage": {}}}),
        start(0, {"type": "text", "text": ""}),
        delta(0, {"type": "text_delta", "text": "Hel"}),
        delta(0, {"type": "text_delta", "text": "lo"}),
        start(1, {"type": "tool_use", "name": "f", "input": {}}),
        delta(1, {"type": "input_json_delta", "partial_json": '{"a": 1}'}),
        _frame("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
    ]
    out = orjson.loads(answer_text(events) or "")
    assert out["content"][0] == {"type": "text", "text": "Hello"}
    assert out["content"][1] == {"type": "tool_use", "name": "f", "input": '{"a": 1}'}
    assert out["stop_reason"] == "tool_use"


def test_a_responses_stream_keeps_its_final_response() -> None:
    final = {
        "id": "resp_1",
        "object": "response",
        "output": [{"type": "message", "content": [{"text": "Hi"}]}],
    }
    events = [
        _frame("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Hi"}),
        _frame("response.completed", {"type": "response.completed", "response": final}),
    ]
    assert orjson.loads(answer_text(events) or "") == final


def test_the_switch_needs_a_retention_and_the_sink_writes_a_batch() -> None:
    async def run() -> list[Any]:
        db = Database("sqlite+aiosqlite://")
        await db.create_schema()
        sink = RequestLogSink(db.engine)
        bodies = BodyLog(sink, max_bytes=1024)
        bodies.apply(SiteSettings(0.0, "", frozenset(), body_logging=True, body_retention_days=0))
        assert not bodies.enabled  # a zero retention keeps nothing
        bodies.apply(SiteSettings(0.0, "", frozenset(), body_logging=True, body_retention_days=3))
        assert bodies.enabled
        for n in range(3):
            bodies.record(
                inference_id=f"r{n}", account_id=1, raw=b'{"a": "' + b"word " * 400 + b'"}', answer=None
            )
        await sink.flush()
        async with db.engine.connect() as conn:
            t = RequestBody
            query = select(t.inference_id, t.request_truncated, t.response).order_by(t.inference_id)
            rows = (await conn.execute(query)).all()
        await db.aclose()
        return list(rows)

    rows = asyncio.run(run())
    assert [r.inference_id for r in rows] == ["r0", "r1", "r2"]
    assert all(r.request_truncated and r.response is None for r in rows)


def test_recording_never_raises_into_the_request() -> None:
    """A closed writer refuses the row: the request's exit path (a settle, a release) goes on."""

    class Closed(RequestLogSink):
        def __init__(self) -> None:
            pass

        def record_body(self, row: dict[str, Any]) -> None:
            raise RuntimeError("the SQLite writer is closed")

    bodies = BodyLog(Closed())
    bodies.record(inference_id="r", account_id=1, raw=b'{"a": 1}', answer=object())  # no exception


def test_a_large_request_is_masked_only_as_far_as_its_stored_text() -> None:
    """``request_text(raw, limit)`` stops walking past what ``bounded`` keeps: the stored text is the
    same as the whole request's, cut at the same byte, for every shape and limit."""
    rng = random.Random(3)

    def value(depth: int = 0) -> Any:
        r = rng.random()
        if depth < 4 and r < 0.3:
            keys = ["a", "api_key", "text", "é", "k1", "k2", "password"]
            return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(5))}
        if depth < 4 and r < 0.5:
            return [value(depth + 1) for _ in range(rng.randrange(5))]
        if r < 0.75:
            texts = ["x" * rng.randrange(40), "é" * rng.randrange(30), 'a"\n\\' * 5, "QUJD" * 150]
            return rng.choice([*texts, "data:image/png;base64," + "A" * 600])
        return rng.choice([None, True, 1, -3.5, 10**18])

    for _ in range(2000):
        raw = orjson.dumps(value())
        for limit in (1, 5, 20, 64, 200, 1000):
            assert bounded(request_text(raw, limit), limit) == bounded(request_text(raw), limit), raw
    agent = {"messages": [{"role": "user", "content": "word " * 5000} for _ in range(40)], "api_key": "k"}
    raw = orjson.dumps(agent)
    text, cut = bounded(request_text(raw, 65536), 65536)
    assert cut and (text, cut) == bounded(request_text(raw), 65536)
    assert len(masked(agent, 65536)["messages"]) < 40  # the rest was never walked
