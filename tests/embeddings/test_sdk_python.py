"""The official openai Python SDK against the gateway: ``embeddings.create`` in each input form and
both encodings, ``models.retrieve`` and ``models.list``, on fake OpenAI-compatible and Gemini
upstreams and on the local embedding model when the catalogue has one."""

from __future__ import annotations

import base64
import struct

import openai
import pytest
import requests

from tests.conftest import LiveServer
from tests.fakes.vectors import fake_vector

FORMS = {
    "string": "The quick brown fox",
    "strings": ["The quick brown fox", "jumps over the lazy dog"],
    "tokens": [791, 406, 141, 399],  # small ids: valid in any tokenizer's vocabulary
    "token_arrays": [[791, 406], [141, 399, 353]],
}
DIMS = {"fake/openai-embed": 16, "fake/gemini-embed": 32}


def local_embedding_models(server: LiveServer) -> list[dict]:
    data = requests.get(f"{server.url}/v1/models", params={"type": "embedding"}, timeout=60).json()["data"]
    return [m for m in data if m["id"].startswith("local/") and m["available"]]


def client_for(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key(), max_retries=0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("model", ["fake/openai-embed", "fake/gemini-embed"])
def test_python_sdk_on_fake_upstreams(embed_server: LiveServer, model: str) -> None:
    client = client_for(embed_server)
    dims = DIMS[model]
    for name, raw in FORMS.items():
        items = [raw] if name in ("string", "tokens") else raw
        for encoding in ("float", "base64", None):
            kwargs = {"encoding_format": encoding} if encoding else {}
            if model == "fake/gemini-embed" and name.startswith("token"):
                with pytest.raises(openai.BadRequestError, match="text only"):
                    client.embeddings.create(model=model, input=raw, **kwargs)
                continue
            res = client.embeddings.create(model=model, input=raw, **kwargs)
            assert res.model == model and res.object == "list"
            assert [d.index for d in res.data] == list(range(len(items)))
            for item, d in zip(items, res.data, strict=True):
                want = fake_vector(item, dims)
                got = d.embedding
                if encoding == "base64":  # asked for explicitly, the SDK hands the string over as is
                    assert isinstance(got, str)
                    got = list(struct.unpack(f"<{dims}f", base64.b64decode(got)))
                assert len(got) == dims
                # base64 (also the SDK's default, decoded by it) carries float32
                assert got == pytest.approx(want, rel=1e-6, abs=1e-7)
                if encoding == "float":
                    assert d.embedding == want
            assert res.usage.prompt_tokens == res.usage.total_tokens > 0
    short = client.embeddings.create(model=model, input="x", dimensions=8)
    assert len(short.data[0].embedding) == 8
    raw = client.embeddings.with_raw_response.create(model=model, input="a b c")
    assert int(raw.headers["x-aimlapi-credits-used"]) > 0
    assert client.models.retrieve(model).id == model
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=model, input="")
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope/nothing", input="x")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_python_sdk_models(embed_server: LiveServer) -> None:
    client = client_for(embed_server)
    listed = {m.id: m for m in client.models.list()}
    assert {"fake/openai-embed", "fake/gemini-embed", "mock/echo"} <= set(listed)
    m = client.models.retrieve("openai-embed")  # an alias resolves to the model
    assert (m.id, m.object, m.owned_by, m.created) == ("fake/openai-embed", "model", "fake", 1706140800)
    assert listed["fake/openai-embed"].owned_by == "fake"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope/nothing")


@pytest.mark.local_model
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_python_sdk_on_the_local_embedding_model(embed_server: LiveServer) -> None:
    local = local_embedding_models(embed_server)
    if not local:
        pytest.skip("no local embedding model in the built-in catalogue")
    model = local[0]["id"]
    dims = local[0]["embedding"]["dimensions"]
    client = client_for(embed_server)
    for name, raw in FORMS.items():
        n = 1 if name in ("string", "tokens") else len(raw)
        floats = client.embeddings.create(model=model, input=raw, encoding_format="float")
        b64 = client.embeddings.create(model=model, input=raw)  # the SDK's base64, decoded by it
        assert len(floats.data) == len(b64.data) == n
        for a, b in zip(floats.data, b64.data, strict=True):
            assert len(a.embedding) == len(b.embedding) == dims
            assert b.embedding == pytest.approx(a.embedding, rel=1e-5, abs=1e-6)
        assert floats.usage.prompt_tokens > 0
    assert client.models.retrieve(model).id == model
