"""The official openai client through modelgate to the fake Gemini and Anthropic upstreams."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.fakes import load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_sse
from tests.fakes.gemini_server import GeminiFake, gemini_sse
from tests.fakes.server import Reply
from tests.fakes.threaded import BackgroundLoop
from tests.spec_helpers import response_schema, validate

CONFIG = """
providers:
  google:
    type: gemini
    base_url: {gemini}
    api_key: test-gemini-key
    max_retries: 0
  anthropic:
    type: anthropic
    base_url: {anthropic}
    api_key: test-anthropic-key
    max_retries: 0
"""


@pytest.fixture
def natives() -> Iterator[tuple[GeminiFake, AnthropicFake]]:
    loop = BackgroundLoop()
    gemini, anthropic = GeminiFake(), AnthropicFake()
    loop.run(gemini.start())
    loop.run(anthropic.start())
    yield gemini, anthropic
    loop.run(gemini.stop())
    loop.run(anthropic.stop())
    loop.close()


@pytest.fixture
def client(make_live_server, natives):
    gemini, anthropic = natives
    server = make_live_server(CONFIG.format(gemini=gemini.base_url, anthropic=f"{anthropic.url}/v1"))
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key(), max_retries=0, timeout=20)
    yield c
    c.close()


def test_gemini_pro_default_budget_eaten_by_thinking(client, natives):
    gemini, _ = natives
    gemini.add(Reply(body=load("gemini_thinking_exhausted.json")))
    raw = client.chat.completions.with_raw_response.create(
        model="google/gemini-2.5-pro",
        messages=[{"role": "user", "content": "Hi! What do you think about mankind?"}],
    )
    c = raw.parse()
    assert c.choices[0].finish_reason == "length"
    assert c.choices[0].message.content == ""
    assert c.usage.completion_tokens_details.reasoning_tokens > 0
    validate(
        raw.http_response.json(), response_schema("chat-gemini-2.5-pro.json", "/v1/chat/completions", "post")
    )
    sent = gemini.last.json
    assert sent["generationConfig"]["maxOutputTokens"] == 512
    assert gemini.last.path.endswith("/models/gemini-2.5-pro:generateContent")
    assert raw.headers["x-modelgate-provider"] == "google"


def test_gemini_stream(client, natives):
    gemini, _ = natives
    gemini.add(gemini_sse(load("gemini_stream_text.json")))
    chunks = list(
        client.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert chunks[-1].model_extra["meta"]["usage"]["credits_used"] > 0


def test_anthropic_text_and_stream(client, natives):
    _, anthropic = natives
    anthropic.add(Reply(body=load("anthropic_text.json")))
    c = client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}],
    )
    assert c.choices[0].finish_reason == "stop" and c.choices[0].message.content
    sent = anthropic.last.json
    assert sent["system"] and sent["max_tokens"] == 512 and sent["model"] == "claude-sonnet-4-5-20250929"

    anthropic.add(anthropic_sse(load("anthropic_stream_text.json")))
    chunks = list(
        client.chat.completions.create(
            model="anthropic/claude-sonnet-4.5", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert chunks[-1].model_extra["meta"]["usage"]["credits_used"] > 0


def test_anthropic_overloaded_is_typed_error(client, natives):
    _, anthropic = natives
    anthropic.add(Reply(status=529, body=load("anthropic_errors.json")["529"]))
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 503
