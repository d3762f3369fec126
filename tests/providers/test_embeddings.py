"""The embedding adapters (OpenAI-compatible and Gemini) against protocol-level fakes: requests as the
upstreams expect them, and every malformed answer refused at the boundary."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelgate.errors import InvalidRequestError, UpstreamProtocolError, UpstreamStatusError
from modelgate.providers.base import EmbeddingProvider, ProviderContext
from modelgate.providers.gemini import GeminiProvider
from modelgate.providers.openai_compat import OpenAICompatProvider
from tests.fakes import Reply
from tests.fakes.calls import build_embed_call, provider_config
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.fakes.vectors import fake_vector

SMALL = "openai/text-embedding-3-small"
ADA = "openai/text-embedding-ada-002"
GEMINI = "google/gemini-embedding-001"


def f32(values: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


@pytest.fixture
async def openai(openai_upstream: FakeOpenAI) -> AsyncIterator[OpenAICompatProvider]:
    openai_upstream.embed_dims = 1536
    p = OpenAICompatProvider(
        "openai", provider_config("openai", openai_upstream.base_url, api_key="sk-up"), ProviderContext()
    )
    yield p
    await p.aclose()


@pytest.fixture
async def gemini(gemini_fake: GeminiFake) -> AsyncIterator[GeminiProvider]:
    p = GeminiProvider(
        "google",
        provider_config(
            "gemini", gemini_fake.base_url, api_key="test-gemini-key", options={"embed_batch_size": 2}
        ),
        ProviderContext(),
    )
    yield p
    await p.aclose()


async def test_openai_texts_in_one_call(openai: OpenAICompatProvider, openai_upstream: FakeOpenAI) -> None:
    assert isinstance(openai, EmbeddingProvider)
    out = await openai.embed(build_embed_call(SMALL, ["hello world", "a b c"]))
    assert out.vectors == [fake_vector("hello world", 1536), fake_vector("a b c", 1536)]
    assert out.prompt_tokens == 5
    (sent,) = openai_upstream.requests
    assert sent.json == {
        "model": "text-embedding-3-small",
        "input": ["hello world", "a b c"],
        "encoding_format": "float",
    }
    assert openai_upstream.headers[0]["Authorization"] == "Bearer sk-up"


async def test_openai_dimensions_token_ids_and_base64(openai_upstream: FakeOpenAI) -> None:
    p = OpenAICompatProvider(
        "vllm",
        provider_config(
            "openai", openai_upstream.base_url, api_key=None, options={"embedding_encoding": "base64"}
        ),
        ProviderContext(),
    )
    try:
        out = await p.embed(build_embed_call(SMALL, [[1, 2, 3], [4]], dimensions=8))
    finally:
        await p.aclose()
    assert out.vectors == [f32(fake_vector([1, 2, 3], 8)), f32(fake_vector([4], 8))]
    assert out.prompt_tokens == 4
    sent = openai_upstream.requests[0]
    assert sent["input"] == [[1, 2, 3], [4]] and sent["dimensions"] == 8
    assert sent["encoding_format"] == "base64"


async def test_openai_answers_out_of_order_are_put_back_in_input_order(
    openai: OpenAICompatProvider, openai_upstream: FakeOpenAI
) -> None:
    body = {
        "data": [{"index": 1, "embedding": [0.5] * 1536}, {"index": 0, "embedding": [0.25] * 1536}],
        "usage": {"prompt_tokens": 2},
    }
    openai_upstream.script(Scripted(body=body))
    out = await openai.embed(build_embed_call(SMALL, ["a", "b"]))
    assert out.vectors[0][0] == 0.25 and out.vectors[1][0] == 0.5


def _item(embedding: Any, index: int = 0) -> dict[str, Any]:
    return {"object": "embedding", "index": index, "embedding": embedding}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"data": [], "usage": {"prompt_tokens": 1}}, "0 embeddings for 1 inputs"),
        ({"usage": {"prompt_tokens": 1}}, "no embeddings"),
        ({"data": [_item([0.1] * 1535)]}, "1535 values; 1536 were expected"),
        ({"data": [_item([0.1] * 1535 + ["x"])]}, "not a number"),
        ({"data": [_item([0.1] * 1535 + [None])]}, "not a number"),
        ({"data": [_item([0.1] * 1537)]}, "1537 values"),
        ({"data": [_item([1e308] * 1536)]}, "non-finite"),
        ({"data": [_item("!!notbase64")]}, "not base64"),
        ({"data": [_item("AAAAAAA=")]}, "base64 embedding of 5 bytes"),
        ({"data": [_item({"values": []})]}, "malformed embedding"),
        ({"data": [_item([0.1] * 1536, index=3)]}, "index out of range"),
        ({"data": [_item([0.1] * 1536, index=True)]}, "index out of range"),
        ({"data": [_item([0.1] * 1536)], "usage": {"prompt_tokens": -1}}, "invalid token count"),
        ({"data": [_item([0.1] * 1536)], "usage": {"prompt_tokens": 10**9}}, "impossible token count"),
        ({"data": [_item([0.1] * 1536)], "usage": {"prompt_tokens": "7"}}, "invalid token count"),
        ({"data": [_item([0.1] * 1536)], "usage": {"prompt_tokens": 2.5}}, "invalid token count"),
        (b"{not json", "not JSON"),
        ([1, 2], "no embeddings"),
    ],
)
async def test_openai_malformed_answers_are_protocol_errors(
    openai: OpenAICompatProvider, openai_upstream: FakeOpenAI, body: Any, needle: str
) -> None:
    openai_upstream.script(Scripted(body=body))
    with pytest.raises(UpstreamProtocolError, match=needle) as info:
        await openai.embed(build_embed_call(SMALL, ["one"]))
    assert info.value.retryable


async def test_openai_duplicate_index_is_refused(
    openai: OpenAICompatProvider, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.script(Scripted(body={"data": [_item([0.1] * 1536), _item([0.2] * 1536)]}))
    with pytest.raises(UpstreamProtocolError, match="embedding 0 twice"):
        await openai.embed(build_embed_call(SMALL, ["one", "two"]))


async def test_openai_missing_usage_is_zero_and_status_errors_pass(
    openai: OpenAICompatProvider, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.script(Scripted(body={"data": [_item([0.1] * 1536)]}))
    assert (await openai.embed(build_embed_call(ADA, ["x"]))).prompt_tokens == 0
    openai_upstream.script(
        Scripted(status=400, body={"error": {"message": "maximum context length is 8192 tokens"}})
    )
    with pytest.raises(UpstreamStatusError) as info:
        await openai.embed(build_embed_call(ADA, ["x"]))
    assert info.value.upstream_status == 400 and not info.value.retryable


async def test_gemini_one_input_uses_embed_content_and_counts_tokens(
    gemini: GeminiProvider, gemini_fake: GeminiFake
) -> None:
    out = await gemini.embed(build_embed_call(GEMINI, ["the quick brown fox"], extra={"task_type": "X"}))
    assert out.vectors == [fake_vector("the quick brown fox", 3072)]
    assert out.prompt_tokens == 4  # from :countTokens (embedding answers carry no count)
    calls = {gemini_fake.model_and_method(i)[1]: r for i, r in enumerate(gemini_fake.requests)}
    assert set(calls) == {"embedContent", "countTokens"}
    assert calls["embedContent"].json == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "the quick brown fox"}]},
        "taskType": "X",
    }
    assert calls["embedContent"].headers["x-goog-api-key"] == "test-gemini-key"


async def test_gemini_batches_split_and_keep_order(gemini: GeminiProvider, gemini_fake: GeminiFake) -> None:
    texts = ["one", "two words", "three more words", "four", "five six"]
    out = await gemini.embed(build_embed_call(GEMINI, texts, dimensions=256))
    assert out.vectors == [fake_vector(t, 256) for t in texts]
    assert out.prompt_tokens == 9
    batches = [r.json for r in gemini_fake.requests if r.path.endswith(":batchEmbedContents")]
    assert [len(b["requests"]) for b in batches] == [2, 2]  # embed_batch_size: 2
    assert all(req["outputDimensionality"] == 256 for b in batches for req in b["requests"])
    (single,) = [r.json for r in gemini_fake.requests if r.path.endswith(":embedContent")]
    assert single["content"]["parts"][0]["text"] == "five six" and single["outputDimensionality"] == 256


@pytest.fixture
async def gemini_scripted(gemini_fake: GeminiFake) -> AsyncIterator[GeminiProvider]:
    """No concurrent :countTokens, so that scripted replies go to the embedding calls."""
    options = {"embed_count_tokens": False}
    conf = provider_config("gemini", gemini_fake.base_url, api_key="test-gemini-key", options=options)
    p = GeminiProvider("google", conf, ProviderContext())
    yield p
    await p.aclose()


async def test_gemini_usage_metadata_is_used_when_present(
    gemini_scripted: GeminiProvider, gemini_fake: GeminiFake
) -> None:
    body = {"embedding": {"values": [0.5] * 3072}, "usageMetadata": {"promptTokenCount": 7}}
    gemini_fake.add(Reply(body=body))
    assert (await gemini_scripted.embed(build_embed_call(GEMINI, ["x"]))).prompt_tokens == 7
    gemini_fake.add(Reply(body={"embedding": {"values": [0.5] * 3072}}))
    assert (await gemini_scripted.embed(build_embed_call(GEMINI, ["x"]))).prompt_tokens == 0


async def test_gemini_count_failure_leaves_the_count_to_the_gateway(
    gemini: GeminiProvider, gemini_fake: GeminiFake
) -> None:
    gemini_fake.count_tokens_status = 404
    out = await gemini.embed(build_embed_call(GEMINI, ["x"]))
    assert out.prompt_tokens == 0 and out.vectors == [fake_vector("x", 3072)]


async def test_gemini_refuses_token_ids_and_malformed_answers(
    gemini_scripted: GeminiProvider, gemini_fake: GeminiFake
) -> None:
    with pytest.raises(InvalidRequestError, match="text only"):
        await gemini_scripted.embed(build_embed_call(GEMINI, [[1, 2, 3]]))
    assert gemini_fake.requests == []
    gemini_fake.add(Reply(body={"embeddings": [{"values": [0.1] * 3072}]}))
    with pytest.raises(UpstreamProtocolError, match="1 embeddings for 2 inputs"):
        await gemini_scripted.embed(build_embed_call(GEMINI, ["a", "b"]))
    gemini_fake.add(Reply(body={"embedding": {"values": [0.1] * 10}}))
    with pytest.raises(UpstreamProtocolError, match="10 values; 3072 were expected"):
        await gemini_scripted.embed(build_embed_call(GEMINI, ["a"]))
    gemini_fake.add(
        Reply(body={"embedding": {"values": [0.1] * 3072}, "usageMetadata": {"promptTokenCount": -3}})
    )
    with pytest.raises(UpstreamProtocolError, match="invalid token count"):
        await gemini_scripted.embed(build_embed_call(GEMINI, ["a"]))


async def test_gemini_upstream_errors_are_status_errors(
    gemini_scripted: GeminiProvider, gemini_fake: GeminiFake
) -> None:
    err = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    gemini_fake.add(Reply(status=429, body=err))
    with pytest.raises(UpstreamStatusError) as info:
        await gemini_scripted.embed(build_embed_call(GEMINI, ["a"]))
    assert info.value.upstream_status == 429 and info.value.retryable
