"""``POST /v1/images/edits``: the official openai SDK's ``images.edit`` (an image and a mask,
multipart) on the metered core against the OpenAI-compatible fake; bad uploads are 400s that reach no
upstream; billing per image exact at a balance."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest
import requests

from tests.billing.helpers import account_state, assert_books_balance, holds_total, wait_for
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted, fake_image, form_fields
from tests.media.conftest import PRICES

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56  # 64 bytes


def edits(upstream: FakeOpenAI) -> list[dict[str, Any]]:
    return [
        form_fields(r.headers["Content-Type"], r.body) for r in upstream.requests if r.path.endswith("/edits")
    ]


def post(server: LiveServer, key: str, files: dict[str, Any] | None, **fields: Any) -> requests.Response:
    fields.setdefault("model", "fake/image")
    fields.setdefault("prompt", "add a moon")
    return requests.post(
        f"{server.url}/v1/images/edits",
        data=fields,
        files=files,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openai_sdk_images_edit(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    client = openai.OpenAI(
        base_url=f"{media_server.url}/v1", api_key=media_server.create_key(), max_retries=0
    )
    raw = client.images.with_raw_response.edit(
        model="fake/image",
        image=("in.png", PNG, "image/png"),
        mask=("mask.png", PNG, "image/png"),
        prompt="add a moon",
        n=2,
        quality="hd",
    )
    assert raw.headers["x-aimlapi-credits-used"] == str(2 * PRICES["hd"])
    res = raw.parse()
    want = [fake_image("edit in.png 64 bytes: add a moon", i) for i in range(2)]
    assert [base64.b64decode(d.b64_json or "") for d in res.data] == want
    up = edits(openai_upstream)[-1]
    assert up["image"] == ("in.png", PNG) and up["mask"] == ("mask.png", PNG)
    assert (up["model"], up["n"], up["size"], up["quality"]) == ("dall-e-3", "2", "1024x1024", "hd")


def test_bad_uploads_are_clear_400s(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = media_server.create_key()
    cases: list[tuple[dict[str, Any] | None, dict[str, Any], str]] = [
        ({"other": ("x.bin", b"x")}, {}, "image"),  # multipart without an image
        ({"image": ("a.txt", b"not an image")}, {}, "image"),
        ({"image": ("a.png", PNG), "mask": ("m.gif", b"GIF89a")}, {}, "mask"),
        ({"image": ("a.png", PNG)}, {"n": "many"}, "n"),
        ({"image": ("a.png", PNG)}, {"size": "3x3"}, "size"),
        ({"image": ("a.png", PNG)}, {"prompt": ""}, "prompt"),
        ({"image": ("a.png", PNG)}, {"model": "fake/image-chain"}, "model"),  # makes no edits
    ]
    for files, fields, param in cases:
        r = post(media_server, key, files, **fields)
        assert r.status_code == 400, (fields, r.text)
        err = r.json()["error"]
        assert param in (err.get("param") or err["message"]), (fields, err)
    assert edits(openai_upstream) == []


def test_billing_is_exact_at_a_balance(media_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    email = "edit-books@example.com"
    key = media_server.create_key(email=email, usd=0.08)  # 160,000 credits: two standard images
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    assert post(media_server, key, {"image": ("a.png", PNG)}).status_code >= 500
    ok = post(media_server, key, {"image": ("a.png", PNG)}, n="2")
    assert ok.status_code == 200 and ok.headers["x-aimlapi-credits-used"] == str(2 * PRICES["standard"])
    wait_for(lambda: account_state(media_server, email)["balance"] == 0)
    broke = post(media_server, key, {"image": ("a.png", PNG)})
    assert broke.status_code == 403 and broke.json()["error"]["code"] == "insufficient_credits"
    wait_for(lambda: holds_total(media_server) == 0)
    assert_books_balance(media_server, email, key, initial_credits=160_000, requests_made=3)
