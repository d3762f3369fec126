"""``POST /v1/embeddings`` over HTTP on fake upstreams: every input form and encoding, the model's
limits as clear 400s, billing per input token with holds and logs exact, routing to Gemini."""

from __future__ import annotations

import base64
import html
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.billing.helpers import assert_books_balance, holds_total, wait_for
from tests.conftest import LiveServer
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.fakes.vectors import fake_vector
from tests.spec_helpers import response_schema, validate

PRICE = 0.5  # fake/openai-embed, USD per 1M input tokens


def embed(server: LiveServer, key: str, **body: Any) -> requests.Response:
    body.setdefault("model", "openai-embed")
    return requests.post(
        f"{server.url}/v1/embeddings", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def f32(values: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def vectors(body: dict[str, Any]) -> list[list[float]]:
    out = []
    for item in body["data"]:
        e = item["embedding"]
        out.append(
            list(struct.unpack(f"<{len(e) * 3 // 16}f", base64.b64decode(e))) if isinstance(e, str) else e
        )
    return out


def test_every_input_form_and_encoding(embed_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = embed_server.create_key()
    cases = [
        ("one two three", ["one two three"], 3),
        (["a b", "c"], ["a b", "c"], 3),
        ([5, 6, 7], [[5, 6, 7]], 3),
        ([[1, 2], [3, 4, 5, 6]], [[1, 2], [3, 4, 5, 6]], 6),
    ]
    for raw, items, tokens in cases:
        for encoding in ("float", "base64", None):
            extra = {"encoding_format": encoding} if encoding else {}
            r = embed(embed_server, key, input=raw, **extra)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["object"] == "list" and body["model"] == "fake/openai-embed"
            assert [d["index"] for d in body["data"]] == list(range(len(items)))
            assert all(d["object"] == "embedding" for d in body["data"])
            want = [fake_vector(i, 16) for i in items]
            if encoding == "base64":
                assert all(isinstance(d["embedding"], str) for d in body["data"])
                assert vectors(body) == [f32(v) for v in want]
            else:
                assert vectors(body) == want
            assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
            credits = body["meta"]["usage"]["credits_used"]
            assert credits == -(-tokens * PRICE * 2 // 1)  # 1 USD = 2M credits, rounded up
            assert r.headers["x-aimlapi-credits-used"] == str(credits)
            assert r.headers["x-inference-id"] and r.headers["x-modelgate-provider"] == "mock"
            sent = openai_upstream.requests[-1]
            assert sent["model"] == "embed-model" and sent["input"] == items
            assert "dimensions" not in sent and "user" not in sent


def test_dimensions(embed_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = embed_server.create_key()
    r = embed(embed_server, key, input="x", dimensions=8)
    assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 8
    assert openai_upstream.requests[-1]["dimensions"] == 8
    r = embed(embed_server, key, input="x", dimensions=16)  # the native length: nothing to ask
    assert r.status_code == 200 and "dimensions" not in openai_upstream.requests[-1]
    for dims in (2, 17):
        bad = embed(embed_server, key, input="x", dimensions=dims)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "dimensions"
        assert "4 to 16" in bad.json()["error"]["message"]
    fixed = embed(embed_server, key, model="fake/fixed-embed", input="x", dimensions=8)
    assert fixed.status_code == 400 and "cannot shorten" in fixed.json()["error"]["message"]
    assert embed(embed_server, key, model="fake/fixed-embed", input="x", dimensions=16).status_code == 200


def test_limits_and_validation_are_clear_400s(embed_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = embed_server.create_key()
    seen = len(openai_upstream.requests)
    cases = [
        ({"input": ["x"] * 9}, "takes at most 8 per request", "too_many_inputs"),
        ({"input": [1] * 65}, "65 tokens cannot fit", "input_too_long"),
        ({"input": ["ok", "y" * (64 * 8 + 1)]}, "input[1]: 513 characters", "input_too_long"),
        ({"input": ""}, "input: must not be an empty string", None),
        ({"input": ["a", 3]}, "input: [1] is not a string", None),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format", None),
    ]
    for body, needle, code in cases:
        r = embed(embed_server, key, **body)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert needle in err["message"] and err["type"] == "invalid_request_error"
        assert err["code"] == code
    assert len(openai_upstream.requests) == seen  # nothing reached the upstream
    chat_model = embed(embed_server, key, model="echo", input="x")
    assert chat_model.status_code == 404 and "as a embedding model" in chat_model.json()["error"]["message"]
    r = requests.post(
        f"{embed_server.url}/v1/chat/completions",
        json={"model": "openai-embed", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 404
    chat_only = embed_server.create_key(email="chat-only@example.com", scopes=["model:chat"])
    denied = embed(embed_server, chat_only, input="x")
    assert denied.status_code == 403 and "model:embeddings" in denied.json()["error"]["message"]
    assert embed(embed_server, "sk-wrong", input="x").status_code == 401


def test_billing_is_exact_with_failures(embed_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    email = "embed-books@example.com"
    key = embed_server.create_key(email=email, usd=1.0)
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    assert embed(embed_server, key, input="fails").status_code >= 500
    openai_upstream.script(Scripted(body={"data": [{"index": 0, "embedding": [1.0] * 3}]}))
    bad = embed(embed_server, key, input="wrong length")
    assert bad.status_code == 502 and bad.json()["error"]["type"] == "upstream_error"
    for i in range(4):
        assert embed(embed_server, key, input=[f"text {i}", "more words here"]).status_code == 200
    # An upstream that reports no usage is charged the hold's bound (UTF-8 bytes + 2 per input).
    openai_upstream.script(Scripted(body={"data": [{"index": 0, "embedding": [0.5] * 16}]}))
    silent = embed(embed_server, key, input="héllo")
    assert silent.status_code == 200 and silent.json()["usage"]["prompt_tokens"] == len("héllo".encode()) + 2
    wait_for(lambda: holds_total(embed_server) == 0)
    assert_books_balance(embed_server, email, key, initial_credits=2_000_000, requests_made=7)


def test_gemini_route(embed_server: LiveServer, gemini_upstream: GeminiFake) -> None:
    key = embed_server.create_key()
    r = embed(embed_server, key, model="gemini-embed", input=["the quick brown fox", "hi"], dimensions=8)
    assert r.status_code == 200, r.text
    body = r.json()
    assert vectors(body) == [fake_vector("the quick brown fox", 8), fake_vector("hi", 8)]
    assert body["usage"]["prompt_tokens"] == 5  # counted by :countTokens
    batch = next(q.json for q in gemini_upstream.requests if q.path.endswith(":batchEmbedContents"))
    assert {q["taskType"] for q in batch["requests"]} == {"SEMANTIC_SIMILARITY"}
    assert {q["outputDimensionality"] for q in batch["requests"]} == {8}
    tokens = embed(embed_server, key, model="gemini-embed", input=[1, 2, 3])
    assert tokens.status_code == 400 and "text only" in tokens.json()["error"]["message"]


def test_metrics_after_embeddings(embed_server: LiveServer) -> None:
    key = embed_server.create_key()
    assert embed(embed_server, key, input="x").status_code == 200
    body = requests.get(f"{embed_server.url}/models/metrics", timeout=60).json()
    validate(body, response_schema("model-metrics.json", "/models/metrics"))
    (entry,) = [m for m in body["models"] if m["alias"] == "fake/openai-embed"]
    assert entry["endpoint"] == "/v1/embeddings" and set(entry["metrics"]) == {"duration_ms"}


def test_docs_page_samples_run(embed_server: LiveServer, tmp_path: Path) -> None:
    """The Python and JavaScript samples of an embedding model's docs page run as written (key
    filled in) against the server."""
    key = embed_server.create_key()
    page = requests.get(f"{embed_server.url}/docs/models/fake/openai-embed", timeout=60).text
    samples = {
        lang: html.unescape(re.search(rf'<code id="sample-{lang}">(.*?)</code>', page, re.S).group(1))
        for lang in ("python", "javascript")
    }
    py = tmp_path / "sample.py"
    placeholder = re.compile(r"<YOUR_[A-Z]+_KEY>")  # the key the reader is told to insert
    assert placeholder.search(samples["python"]) and placeholder.search(samples["javascript"])
    py.write_text(placeholder.sub(key, samples["python"]))
    done = subprocess.run([sys.executable, str(py)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("0 16 [") and '"prompt_tokens"' in done.stdout
    node = shutil.which("node")
    if node is not None:
        js = tmp_path / "sample.mjs"
        js.write_text(placeholder.sub(key, samples["javascript"]))
        done = subprocess.run([node, str(js)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("0 16 [") and "prompt_tokens" in done.stdout
