"""An agent's streamed Messages request is not kept alive by the gateway while its answer streams:
once the stream is committed to a route, nothing holds the request's body (hundreds of KB) or its
parsed history — a stream lasts minutes and an agent keeps hundreds in flight, so what each one
keeps is what the process's memory grows by (docs/benchmarks.md, the agent-shaped load)."""

from __future__ import annotations

import asyncio
import gc
import inspect
from pathlib import Path
from typing import Any

from modelgate.accounts.service import create_key, get_or_create_account, top_up
from modelgate.app import build_app
from modelgate.settings import Settings
from tests.fakes import load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_sse

CONFIG = """
providers:
  anth: {{type: anthropic, base_url: "{url}", api_key: test-anthropic-key, max_retries: 0}}
models:
  - id: anthropic/claude-test
    aliases: [claude-test]
    info: {{name: Claude Test, developer: Anthropic, contextLength: 1000000, outputMax: 64000}}
    pricing: {{input_usd_per_mtok: 3.0, output_usd_per_mtok: 15.0}}
    routes: [{{provider: anth, model: claude-sonnet-4-5}}]
"""
HISTORY = [
    {"role": "user", "content": [{"type": "text", "text": f"turn {i} " + "word " * 2000}]} for i in range(60)
]


def _body() -> bytes:
    import orjson

    return orjson.dumps({"model": "claude-test", "max_tokens": 100, "stream": True, "messages": HISTORY})


async def _key(state: Any) -> str:
    async with state.db.engine.begin() as conn:
        account = await get_or_create_account(conn, email="agent@example.com")
        await top_up(conn, account_id=account, usd=100.0)
        return (await create_key(conn, account_id=account)).key


async def test_a_streamed_request_is_let_go_once_its_stream_is_committed(tmp_path: Path) -> None:
    async with AnthropicFake() as upstream:
        events = load("anthropic_stream_text.json")
        upstream.add(anthropic_sse(events, event_delay=0.1))
        config = tmp_path / "mg.yaml"
        config.write_text(CONFIG.format(url=upstream.base_url))
        app = build_app(Settings(database_url=f"sqlite:///{tmp_path}/mg.db", config=config, bootstrap=False))
        async with app.router.lifespan_context(app):
            key = await _key(app.state.mg)
            body = _body()
            pending = [body]
            done = asyncio.get_running_loop().create_future()
            frames: list[bytes] = []

            async def receive() -> dict[str, Any]:
                if pending:
                    return {"type": "http.request", "body": pending.pop(), "more_body": False}
                await done
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    assert message["status"] == 200
                elif message.get("body"):
                    frames.append(message["body"])

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/v1/messages",
                "raw_path": b"/v1/messages",
                "query_string": b"",
                "root_path": "",
                "headers": [
                    (b"x-api-key", key.encode()),
                    (b"anthropic-version", b"2023-06-01"),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
            }
            task = asyncio.ensure_future(app(scope, receive, send))
            for _ in range(200):  # the stream is under way: three events passed on
                if len(frames) >= 3 or task.done():
                    break
                await asyncio.sleep(0.02)
            assert len(frames) >= 3 and not task.done()
            gc.collect()
            this = test_a_streamed_request_is_let_go_once_its_stream_is_committed.__name__
            holders = [
                type(r).__qualname__ if not inspect.isasyncgen(r) else r.__qualname__
                for r in gc.get_referrers(body)
                if getattr(r, "__name__", None) != this
            ]
            mine = HISTORY[0]["content"][0]
            parsed = [  # the first block of the history as the gateway parsed it, if anything keeps it
                o
                for o in gc.get_objects()
                if type(o) is dict
                and o is not mine
                and o.get("type") == "text"
                and o.get("text") == mine["text"]
            ]
            done.set_result(None)
            await task
        assert upstream.last.body == body.replace(b'"claude-test"', b'"claude-sonnet-4-5"')
    assert holders == []
    assert parsed == []
