"""Every door tolerates what a newer client adds (issue 20): unknown top-level fields and unknown
beta headers are never validation errors. A route that forwards them (an OpenAI-compatible chat
upstream, an Anthropic or Responses pass-through) sends them up as they came; one that cannot names
them in ``x-modelgate-dropped``, the one header every door uses for what it left out. (Messages and
Responses: test_messages_acceptance.py, responses/test_acceptance.py.)"""

from __future__ import annotations

from typing import Any

import requests

from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes import Reply, load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_sse
from tests.fakes.openai_server import FakeOpenAI

NEWER = {"a_field_from_2030": {"nested": [1]}, "verbosity": "low"}
BETA = {"openai-beta": "assistants=v9", "anthropic-beta": "made-up-2099-01-01", "x-stainless-helper": "x"}


def test_chat_door_forwards_unknown_fields_to_a_chat_upstream(
    door_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    key = door_server.create_key()
    r = requests.post(
        f"{door_server.url}/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": "hi"}], **NEWER},
        headers={"Authorization": f"Bearer {key}", **BETA},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert openai_upstream.last["a_field_from_2030"] == {"nested": [1]}
    assert "x-modelgate-dropped" not in r.headers


def test_chat_door_names_unknown_fields_a_translated_route_drops(
    door_server: LiveServer, anthropic_up: AnthropicFake
) -> None:
    key = door_server.create_key()
    anthropic_up.add(
        Reply(body=load("anthropic_text.json")), anthropic_sse(load("anthropic_stream_text.json"))
    )
    for stream in (False, True):
        r = requests.post(
            f"{door_server.url}/v1/chat/completions",
            json={
                "model": "claude-test",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": stream,
                **NEWER,
            },
            headers={"Authorization": f"Bearer {key}", **BETA},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-modelgate-dropped"] == "a_field_from_2030, verbosity"
        assert "a_field_from_2030" not in anthropic_up.last


EMBEDDING_MODEL = """
  - id: mock/embed
    aliases: [embed]
    type: embedding
    info: {{name: Embed, developer: Lab}}
    pricing: {{input_usd_per_mtok: 0.02}}
    embedding: {{dimensions: 16, max_inputs: 16, max_input_tokens: 512}}
    routes:
      - {{provider: mock, model: embed-upstream}}
"""


def test_embeddings_door_tolerates_and_names_unknown_fields(
    make_live_server: Any, openai_upstream: FakeOpenAI
) -> None:
    server: LiveServer = make_live_server(
        (MOCK_CONFIG + EMBEDDING_MODEL).format(base_url=openai_upstream.base_url)
    )
    r = requests.post(
        f"{server.url}/v1/embeddings",
        json={"model": "embed", "input": "hi", **NEWER},
        headers={"Authorization": f"Bearer {server.create_key()}", **BETA},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["data"][0]["embedding"]) == 16
    assert r.headers["x-modelgate-dropped"] == "a_field_from_2030, verbosity"


def test_chat_door_keeps_a_mid_conversation_system_message(
    door_server: LiveServer, openai_upstream: FakeOpenAI, anthropic_up: AnthropicFake
) -> None:
    """In place on a chat upstream; in Anthropic's ``system`` on a Claude route (its nearest
    equivalent there)."""
    key = door_server.create_key()
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "system", "content": "From now on, answer in French."},
        {"role": "user", "content": "bye"},
    ]
    anthropic_up.add(Reply(body=load("anthropic_text.json")))
    for model in ("echo", "claude-test"):
        r = requests.post(
            f"{door_server.url}/v1/chat/completions",
            json={"model": model, "messages": messages, "thinking": {"type": "adaptive"}},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert r.status_code == 200, (model, r.text)
    assert [m["role"] for m in openai_upstream.last["messages"]] == ["user", "assistant", "system", "user"]
    sent = anthropic_up.last
    assert "answer in French" in str(sent["system"])
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
