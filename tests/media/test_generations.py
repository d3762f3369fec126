"""``POST /v1/images/generations`` on the metered core, against the OpenAI-compatible fake: the
official openai SDK's ``images.generate``, clear 400s for what a model does not offer, the
``model:image`` scope, fallback along the chain, and billing per image exact at a balance."""

from __future__ import annotations

import base64
from typing import Any

import openai
import orjson
import pytest
import requests

from tests.billing.helpers import account_state, assert_books_balance, holds_total, wait_for
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted, fake_image
from tests.media.conftest import PRICES


def post(server: LiveServer, key: str, **body: Any) -> requests.Response:
    body.setdefault("model", "image-fake")
    body.setdefault("prompt", "a lighthouse at dusk")
    return requests.post(
        f"{server.url}/v1/images/generations",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def sent(upstream: FakeOpenAI) -> list[dict[str, Any]]:
    return [orjson.loads(r.body) for r in upstream.requests if r.path.endswith("/images/generations")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openai_sdk_images_generate(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    client = openai.OpenAI(
        base_url=f"{media_server.url}/v1", api_key=media_server.create_key(), max_retries=0
    )
    res = client.images.generate(model="image-fake", prompt="a red fox", n=2, response_format="b64_json")
    assert [base64.b64decode(d.b64_json or "") for d in res.data] == [
        fake_image("a red fox", i) for i in range(2)
    ]
    assert res.size == "1024x1024" and res.quality == "standard"
    # The resolved size and quality go up with the upstream model name: what the charge is priced by.
    up = sent(openai_upstream)[-1]
    assert up == {
        "model": "dall-e-3",
        "prompt": "a red fox",
        "n": 2,
        "size": "1024x1024",
        "quality": "standard",
        "response_format": "b64_json",
    }
    raw = client.images.with_raw_response.generate(
        model="fake/image",
        prompt="wide",
        size="1792x1024",
        quality="hd",
        response_format="url",
        style="vivid",
    )
    assert raw.headers["x-aimlapi-credits-used"] == str(PRICES["wide"])
    assert raw.headers["x-modelgate-provider"] == "mock"
    wide = raw.parse()
    assert wide.data[0].url == "https://images.example/0.png" and wide.data[0].revised_prompt == "wide"
    assert sent(openai_upstream)[-1]["style"] == "vivid"
    with pytest.raises(openai.BadRequestError, match="size"):
        client.images.generate(model="image-fake", prompt="x", size="512x512")
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="echo", prompt="a chat model is no image model")


def test_bad_requests_are_clear_400s(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = media_server.create_key()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"size": "999x999"}, "size"),
        ({"size": "big"}, "size"),
        ({"size": "1792x1024", "quality": "standard"}, "quality"),
        ({"quality": "ultra"}, "quality"),
        ({"n": 5}, "n"),
        ({"n": 0}, "n"),
        ({"n": "2"}, "n"),
        ({"response_format": "gif"}, "response_format"),
        ({"output_format": "bmp"}, "output_format"),
        ({"stream": True}, "stream"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 201}, "prompt"),
    ]
    for extra, param in cases:
        r = post(media_server, key, **extra)
        assert r.status_code == 400, (extra, r.text)
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and param in (err.get("param") or err["message"]), (
            extra,
            err,
        )
    assert sent(openai_upstream) == []
    chat_only = media_server.create_key(email="chat-only@example.com", scopes=["model:chat"])
    denied = post(media_server, chat_only)
    assert denied.status_code == 403 and "model:image" in denied.json()["error"]["message"]
    # An image model on the chat door is no chat model.
    chat = requests.post(
        f"{media_server.url}/v1/chat/completions",
        json={"model": "image-fake", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert chat.status_code == 404
    assert sent(openai_upstream) == []


def test_fallback_to_the_next_route(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = media_server.create_key()
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    r = post(media_server, key, model="fake/image-chain")
    assert r.status_code == 200, r.text
    assert r.headers["x-modelgate-provider"] == "mock"
    assert [b["model"] for b in sent(openai_upstream)] == ["first-image-model", "second-image-model"]


def test_model_list_type(media_server: LiveServer) -> None:
    data = requests.get(f"{media_server.url}/v1/models", timeout=60).json()["data"]
    types = {m["id"]: m["type"] for m in data}
    assert types["fake/image"] == "openai/image-generations"
    listed = requests.get(f"{media_server.url}/v1/models", params={"type": "image"}, timeout=60).json()[
        "data"
    ]
    assert {m["id"] for m in listed} == {"fake/image", "fake/image-chain"}


def test_billing_is_exact_at_a_balance(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    email = "image-books@example.com"
    key = media_server.create_key(email=email, usd=0.2)  # 400,000 credits: five standard images
    initial = 400_000
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    assert post(media_server, key).status_code >= 500  # nothing charged
    openai_upstream.script(Scripted(body={"data": [{"b64_json": "not base64!"}]}))
    bad = post(media_server, key)
    assert bad.status_code == 502 and bad.json()["error"]["type"] == "upstream_error"
    openai_upstream.script(Scripted(body={"data": [{"b64_json": "aGk="}] * 3}))
    assert post(media_server, key, n=2).status_code == 502  # more images than asked for
    # Two images asked, one returned: one is charged.
    openai_upstream.script(Scripted(body={"created": 1, "data": [{"b64_json": "aGk="}]}))
    one = post(media_server, key, n=2)
    assert one.status_code == 200 and one.headers["x-aimlapi-credits-used"] == str(PRICES["standard"])
    assert one.json()["meta"]["usage"]["credits_used"] == PRICES["standard"]
    # Holds are settled in the background: wait for them, so that the next hold sees the balance.
    wait_for(lambda: account_state(media_server, email)["holds"] == 0)
    hd = post(media_server, key, quality="hd", n=2)  # 320,000: the whole balance left
    assert hd.status_code == 200 and hd.headers["x-aimlapi-credits-used"] == str(2 * PRICES["hd"])
    wait_for(lambda: account_state(media_server, email)["balance"] == 0)
    # Nothing left: the next image cannot be held, and the upstream is not called.
    before = len(sent(openai_upstream))
    broke = post(media_server, key)
    assert broke.status_code == 403 and broke.json()["error"]["code"] == "insufficient_credits", broke.text
    assert len(sent(openai_upstream)) == before
    wait_for(lambda: holds_total(media_server) == 0)
    assert_books_balance(media_server, email, key, initial_credits=initial, requests_made=6)
    state = account_state(media_server, email)
    assert state["charged"] == PRICES["standard"] + 2 * PRICES["hd"] == initial


def test_metrics_and_docs_pages_know_media_models(media_server: LiveServer) -> None:
    key = media_server.create_key()
    assert post(media_server, key).status_code == 200
    speech = {"model": "fake/tts", "input": "hi", "voice": "alloy"}
    auth = {"Authorization": f"Bearer {key}"}
    assert requests.post(f"{media_server.url}/v1/audio/speech", json=speech, headers=auth, timeout=30).ok

    def endpoints() -> dict[str, str]:
        data = requests.get(f"{media_server.url}/models/metrics", timeout=60).json()["models"]
        return {m["alias"]: m["endpoint"] for m in data}

    wait_for(lambda: {"fake/image", "fake/tts"} <= set(endpoints()))
    got = endpoints()
    assert got["fake/image"] == "/v1/images/generations" and got["fake/tts"] == "/v1/audio/speech"
    for model in ("fake/image", "fake/tts", "fake/whisper"):
        page = requests.get(f"{media_server.url}/docs/models/{model}", timeout=60)
        assert page.status_code == 200, (model, page.status_code)
        assert "per 1M tokens" not in page.text  # priced per unit, not per token
    tts = requests.get(f"{media_server.url}/docs/models/fake/tts", timeout=60).text
    assert "$15.00 per 1M characters" in tts  # the one money format (src/modelgate/money.py)
