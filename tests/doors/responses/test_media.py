"""Issue 18: a Responses ``input_file.file_data`` holding a URL, and an invalid base64 image, were
forwarded to Claude and Gemini as if valid. One validator (``wire/media.py``) now checks inline
media on every door — chat, Responses, Messages — on every route: a 400 in the door's own envelope
naming the field, and no upstream sees the request."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.conftest import LiveServer
from tests.doors.responses.test_native_fakes import gemini_reply
from tests.fakes import Reply
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.responses_server import ResponsesFake

PNG = "iVBORw0KGgo="  # valid base64
NOT_BASE64 = "not*base64!"
URL = "https://example.com/report.pdf"


def _responses(model: str, part: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "x"}, part]}],
    }


def _chat(model: str, part: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, part]}]}


def _messages(model: str, block: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": [block]}]}


CASES = [
    (
        "/v1/responses",
        _responses,
        {"type": "input_file", "filename": "r.pdf", "file_data": URL},
        "input[0].content[1].file_data",
    ),
    (
        "/v1/responses",
        _responses,
        {"type": "input_image", "image_url": f"data:image/png;base64,{NOT_BASE64}"},
        "input[0].content[1].image_url",
    ),
    (
        "/v1/chat/completions",
        _chat,
        {"type": "file", "file": {"filename": "r.pdf", "file_data": URL}},
        "messages[0].content[1].file.file_data",
    ),
    (
        "/v1/chat/completions",
        _chat,
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{NOT_BASE64}"}},
        "messages[0].content[1].image_url.url",
    ),
    (
        "/v1/messages",
        _messages,
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": NOT_BASE64}},
        "messages[0].content[0].source.data",
    ),
    (
        "/v1/messages",
        _messages,
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": URL}},
        "messages[0].content[0].source.data",
    ),
]


@pytest.mark.parametrize(("path", "build", "part", "field"), CASES)
@pytest.mark.parametrize("model", ["claude-fake", "gemini-fake", "gpt-fake"])
def test_bad_inline_media_is_a_400_naming_the_field_on_every_door(
    server: LiveServer,
    responses_up: ResponsesFake,
    gemini_up: GeminiFake,
    anthropic_up: AnthropicFake,
    path: str,
    build: Any,
    part: dict[str, Any],
    field: str,
    model: str,
) -> None:
    key = server.create_key()
    before = [len(f.requests) for f in (responses_up, gemini_up, anthropic_up)]
    headers = {"Authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    r = requests.post(f"{server.url}{path}", json=build(model, part), headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    body = r.json()
    if path == "/v1/messages":  # Anthropic's envelope
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"].startswith(field)
    else:
        assert body["error"]["param"] == field, body
    assert [len(f.requests) for f in (responses_up, gemini_up, anthropic_up)] == before


def test_valid_inline_media_still_goes_through(server: LiveServer, gemini_up: GeminiFake) -> None:
    key = server.create_key()
    gemini_up.add(Reply(body=gemini_reply([{"text": "a cat"}])))
    part = {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}
    r = requests.post(
        f"{server.url}/v1/responses",
        json=_responses("gemini-fake", part),
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    parts = gemini_up.last.json["contents"][0]["parts"]
    assert {"inlineData": {"mimeType": "image/png", "data": PNG}} in parts
