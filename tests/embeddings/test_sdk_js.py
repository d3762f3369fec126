"""The official openai JS SDK (npm ``openai``, run with Node >= 20) against the gateway: the same
checks as the Python SDK's, through ``tests/embeddings/js/embeddings.mjs``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.embeddings.conftest import JS_DIR
from tests.embeddings.test_sdk_python import DIMS, local_embedding_models
from tests.fakes.vectors import fake_vector


def run_js(node: Path, server: LiveServer, models: list[str]) -> dict:
    env = {
        **os.environ,
        "MG_BASE_URL": f"{server.url}/v1",
        "MG_KEY": server.create_key(),
        "MG_MODELS": json.dumps(models),
    }
    done = subprocess.run(
        [str(node), str(JS_DIR / "embeddings.mjs")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_js_sdk_on_fake_upstreams(embed_server: LiveServer, node_openai: Path) -> None:
    out = run_js(node_openai, embed_server, ["fake/openai-embed", "fake/gemini-embed"])
    for model, dims in DIMS.items():
        results = out["embeddings"][model]
        assert len(results) == 12  # 4 input forms x (float, base64, the SDK's default)
        for key, res in results.items():
            form = key.split("/")[0]
            if model == "fake/gemini-embed" and form.startswith("token"):
                assert res["error"] == "BadRequestError" and res["status"] == 400, res
                continue
            assert "error" not in res, (model, key, res)
            assert res["object"] == "list" and res["model"] == model
            assert res["usage"]["prompt_tokens"] == res["usage"]["total_tokens"] > 0
            n = 1 if form in ("string", "tokens") else 2
            assert [d["index"] for d in res["data"]] == list(range(n))
            for d in res["data"]:
                assert d["length"] == dims and d["object"] == "embedding"
                assert d["isString"] is key.endswith("/base64")  # the SDK's default comes decoded
        first = results["string/float"]["data"][0]["head"]
        assert first == pytest.approx(fake_vector("The quick brown fox", dims)[:4], rel=1e-6)
        assert results["string/base64"]["data"][0]["head"] == pytest.approx(first, rel=1e-6, abs=1e-7)
        retrieved = out["retrieve"][model]
        assert retrieved["id"] == model and retrieved["object"] == "model" and retrieved["owned_by"] == "fake"
    assert out["notFound"] == "NotFoundError"
    ids = {m["id"] for m in out["list"]}
    assert {"fake/openai-embed", "fake/gemini-embed", "mock/echo"} <= ids
    assert all(m["object"] == "model" and m["owned_by"] for m in out["list"])


@pytest.mark.local_model
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_js_sdk_on_the_local_embedding_model(embed_server: LiveServer, node_openai: Path) -> None:
    local = local_embedding_models(embed_server)
    if not local:
        pytest.skip("no local embedding model in the built-in catalogue")
    model, dims = local[0]["id"], local[0]["embedding"]["dimensions"]
    out = run_js(node_openai, embed_server, [model])
    for key, res in out["embeddings"][model].items():
        assert "error" not in res, (key, res)
        assert all(d["length"] == dims for d in res["data"])
    assert out["retrieve"][model]["id"] == model
