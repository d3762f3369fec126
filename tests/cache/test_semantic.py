"""The semantic cache (docs/cache.md) with the embedded all-MiniLM-L6-v2: the embeddings tests'
paraphrase set hits (at a threshold an operator can choose for it), unrelated prompts and near
misses miss ("what is 2+2" / "what is 2+3", a negation, another country), the earlier turns and
the parameters must match exactly, on the chat, Messages and Responses doors."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.cache.conftest import wait_for_entries
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.providers.test_local_embed import DISTRACTORS, PARAPHRASES

pytestmark = pytest.mark.local_model
SEMANTIC = {"x-modelgate-cache": "semantic"}
NEAR_MISSES = [
    ("what is 2+2", "what is 2+3"),
    ("Is Paris in France?", "Is Paris not in France?"),
    ("What is the capital of France?", "What is the capital of Germany?"),
]


@pytest.fixture
def server(make_cache_server: Any) -> LiveServer:
    pytest.importorskip("onnxruntime")
    s: LiveServer = make_cache_server(cache_similarity=0.55)
    return s


def ask(server: LiveServer, key: str, text: str, **kw: Any) -> tuple[str, str | None]:
    raw = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0).chat.completions
    resp = raw.with_raw_response.create(
        model="echo",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        extra_headers=SEMANTIC,
        **kw,
    )
    return str(resp.parse().choices[0].message.content), resp.headers.get("x-modelgate-cache")


def test_paraphrases_hit_and_unrelated_prompts_miss(server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = server.create_key()
    for n, (first, _) in enumerate(PARAPHRASES, 1):
        assert ask(server, key, first)[1] is None
        wait_for_entries(server, n)
    calls = len(openai_upstream.requests)
    for first, second in PARAPHRASES:
        assert ask(server, key, second) == (first, "hit:semantic")  # the first one's answer
    assert len(openai_upstream.requests) == calls
    for text in DISTRACTORS:
        assert ask(server, key, text) == (text, None)
    # the same turn after other parameters, or another system prompt, is not the same request
    assert ask(server, key, PARAPHRASES[2][1], temperature=0.3)[1] is None


def test_near_misses_miss(server: LiveServer) -> None:
    key = server.create_key()
    for n, (first, second) in enumerate(NEAR_MISSES, 1):
        ask(server, key, first)
        wait_for_entries(server, 2 * n - 1)
        assert ask(server, key, second) == (second, None)
        wait_for_entries(server, 2 * n)


def test_messages_and_responses_doors(server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = server.create_key()
    claude = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)
    kw: dict[str, Any] = {"model": "echo", "max_tokens": 64, "extra_headers": SEMANTIC}
    claude.messages.create(messages=[{"role": "user", "content": "What is the capital of France?"}], **kw)
    wait_for_entries(server, 1)
    hit = claude.messages.with_raw_response.create(
        messages=[{"role": "user", "content": "Which city is France's capital?"}], **kw
    )
    assert hit.headers["x-modelgate-cache"] == "hit:semantic"
    assert hit.parse().content[0].text == "What is the capital of France?"  # type: ignore[union-attr]
    responses = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0).responses
    responses.create(model="echo", input="He plays the guitar in a rock band.", extra_headers=SEMANTIC)
    wait_for_entries(server, 2)
    calls = len(openai_upstream.requests)
    again = responses.with_raw_response.create(
        model="echo", input="He is a guitarist in a rock group.", extra_headers=SEMANTIC
    )
    assert again.headers["x-modelgate-cache"] == "hit:semantic" and len(openai_upstream.requests) == calls
    assert again.parse().output_text.strip() == "He plays the guitar in a rock band."
