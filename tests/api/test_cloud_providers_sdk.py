"""The official SDKs (openai, anthropic) through modelgate's Chat, Messages and Responses doors to
the cloud providers' fakes: Azure OpenAI (Entra ID tokens), Vertex AI (Gemini and Claude, a
service-account JWT exchange) and Bedrock (Converse and Claude on InvokeModel, SigV4) — every
request authenticated as the fake's service checks it, every answer billed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import LiveServer
from tests.fakes import Reply, load
from tests.fakes.anthropic_server import anthropic_sse
from tests.fakes.azure_server import AzureFake
from tests.fakes.bedrock_server import BedrockFake, anthropic_chunks, converse_stream, converse_text
from tests.fakes.gemini_server import gemini_sse
from tests.fakes.threaded import BackgroundLoop
from tests.fakes.vertex_server import VertexFake

BEDROCK_CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
CONFIG = """
providers:
  azure:
    type: azure
    base_url: {azure}
    max_retries: 0
    options:
      responses: true
      entra: {{tenant_id: tenant-1, client_id: client-1, client_secret: secret-1, authority: "{azure}"}}
  vertex:
    type: vertex
    base_url: {vertex}
    max_retries: 0
    options: {{project: proj-1, region: us-central1, credentials_file: "{key_file}"}}
  vertex-claude:
    type: vertex-anthropic
    base_url: {vertex}
    max_retries: 0
    options: {{project: proj-1, region: us-central1, credentials_file: "{key_file}"}}
  bedrock:
    type: bedrock
    base_url: {bedrock}
    max_retries: 0
    options: {{region: us-east-1, access_key_id: {ak}, secret_access_key: "{sk}"}}
  bedrock-claude:
    type: bedrock-anthropic
    base_url: {bedrock}
    max_retries: 0
    options: {{region: us-east-1, access_key_id: {ak}, secret_access_key: "{sk}"}}
models:
  - id: cloud/gpt-4o
    info: {{name: GPT-4o on Azure, developer: OpenAI, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 2.5, output_usd_per_mtok: 10.0}}
    capabilities: [streaming, tools]
    routes: [{{provider: azure, model: prod-4o}}]
  - id: cloud/gemini
    info: {{name: Gemini on Vertex, developer: Google, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 1.25, output_usd_per_mtok: 10.0}}
    routes: [{{provider: vertex, model: gemini-2.5-pro}}]
  - id: cloud/claude-vertex
    info: {{name: Claude on Vertex, developer: Anthropic, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 3.0, output_usd_per_mtok: 15.0}}
    routes: [{{provider: vertex-claude, model: claude-sonnet-4-5@20250929}}]
  - id: cloud/claude-bedrock
    info: {{name: Claude on Bedrock, developer: Anthropic, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 3.0, output_usd_per_mtok: 15.0}}
    routes: [{{provider: bedrock-claude, model: {claude}}}]
  - id: cloud/converse
    info: {{name: Converse, developer: Amazon, outputMax: 4096}}
    pricing: {{input_usd_per_mtok: 0.8, output_usd_per_mtok: 3.2}}
    routes: [{{provider: bedrock, model: {claude}}}]
"""

AZURE_CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi from Azure"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
}
AZURE_RESPONSE = {
    "id": "resp_azure1",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": "prod-4o",
    "output": [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi from Azure Responses", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 5,
        "output_tokens": 4,
        "total_tokens": 9,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
}


@dataclass
class Clouds:
    azure: AzureFake
    vertex: VertexFake
    bedrock: BedrockFake
    server: LiveServer
    key: str

    def chat(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=self.key, max_retries=0, timeout=20)

    def messages(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.server.url, api_key=self.key, max_retries=0, timeout=20)


@pytest.fixture
def clouds(make_live_server: Any) -> Iterator[Clouds]:
    loop = BackgroundLoop()
    azure, vertex, bedrock = AzureFake(api_key=None, deployments=("prod-4o",)), VertexFake(), BedrockFake()
    for fake in (azure, vertex, bedrock):
        loop.run(fake.start())
    try:
        config = CONFIG.format(
            azure=azure.url,
            vertex=vertex.url,
            key_file=vertex.credentials_file,
            bedrock=bedrock.url,
            ak=bedrock.access_key,
            sk=bedrock.secret_key,
            claude=BEDROCK_CLAUDE,
        )
        server: LiveServer = make_live_server(config)
        yield Clouds(azure, vertex, bedrock, server, server.create_key(usd=5.0))
    finally:
        for fake in (azure, vertex, bedrock):
            loop.run(fake.stop())
        loop.close()


def _credits(raw: Any) -> int:
    return int(raw.headers["x-aimlapi-credits-used"])


def test_chat_door_on_every_cloud(clouds: Clouds) -> None:
    client = clouds.chat()
    hi = [{"role": "user", "content": "Hello"}]
    clouds.azure.add(Reply(body=AZURE_CHAT))
    raw = client.chat.completions.with_raw_response.create(model="cloud/gpt-4o", messages=hi)  # type: ignore[arg-type]
    assert raw.parse().choices[0].message.content == "Hi from Azure" and _credits(raw) > 0
    assert raw.headers["x-modelgate-provider"] == "azure"
    assert (
        clouds.azure.issued == 1 and clouds.azure.last.path == "/openai/deployments/prod-4o/chat/completions"
    )

    clouds.vertex.add(gemini_sse(load("gemini_stream_text.json")))
    chunks = list(client.chat.completions.create(model="cloud/gemini", messages=hi, stream=True))  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert clouds.vertex.model_and_method() == ("google", "gemini-2.5-pro", "streamGenerateContent")

    clouds.vertex.add(Reply(body=load("anthropic_text.json")))
    c = client.chat.completions.create(model="cloud/claude-vertex", messages=hi)  # type: ignore[arg-type]
    assert c.choices[0].message.content and clouds.vertex.model_and_method()[2] == "rawPredict"

    clouds.bedrock.add(converse_stream())
    chunks = list(client.chat.completions.create(model="cloud/converse", messages=hi, stream=True))  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there"
    assert chunks[-1].model_extra is not None and chunks[-1].model_extra["meta"]["usage"]["credits_used"] > 0

    clouds.bedrock.add(Reply(body=load("anthropic_text.json")))
    c = client.chat.completions.create(model="cloud/claude-bedrock", messages=hi)  # type: ignore[arg-type]
    assert c.choices[0].message.content and clouds.bedrock.model_and_op() == (BEDROCK_CLAUDE, "invoke")
    assert clouds.vertex.issued == 2 and clouds.bedrock.verified == 2  # one token per provider


def test_messages_door_passes_through_to_claude_on_both_clouds(clouds: Clouds) -> None:
    client = clouds.messages()
    hi: list[Any] = [{"role": "user", "content": "Hello"}]
    clouds.vertex.add(Reply(body=load("anthropic_text.json")))
    msg = client.messages.create(model="cloud/claude-vertex", max_tokens=64, messages=hi)
    assert msg.content[0].type == "text" and msg.model == "cloud/claude-vertex"
    sent = clouds.vertex.last.json
    assert (
        sent["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent and sent["max_tokens"] == 64
    )
    assert clouds.vertex.model_and_method() == ("anthropic", "claude-sonnet-4-5@20250929", "rawPredict")

    clouds.bedrock.add(anthropic_chunks(load("anthropic_stream_text.json")))
    with client.messages.stream(model="cloud/claude-bedrock", max_tokens=64, messages=hi) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.usage.output_tokens > 0
    assert clouds.bedrock.model_and_op() == (BEDROCK_CLAUDE, "invoke-with-response-stream")
    assert "stream" not in clouds.bedrock.last.json

    # Translated: Messages requests to the non-Anthropic clouds.
    clouds.bedrock.add(Reply(body=converse_text("Converse says hi")))
    msg = client.messages.create(model="cloud/converse", max_tokens=64, messages=hi)
    assert msg.content[0].type == "text" and msg.content[0].text == "Converse says hi"
    clouds.azure.add(Reply(body=AZURE_CHAT))
    msg = client.messages.create(model="cloud/gpt-4o", max_tokens=64, messages=hi)
    assert msg.content[0].type == "text" and msg.content[0].text == "Hi from Azure"
    clouds.vertex.add(Reply(body=load("gemini_text.json")))
    msg = client.messages.create(model="cloud/gemini", max_tokens=2048, messages=hi)
    assert msg.usage.input_tokens > 0


def test_responses_door_on_every_cloud(clouds: Clouds) -> None:
    client = clouds.chat()
    clouds.azure.add(Reply(body=AZURE_RESPONSE))
    resp = client.responses.create(model="cloud/gpt-4o", input="Hello")
    assert resp.output_text == "Hi from Azure Responses"
    assert clouds.azure.last.path == "/openai/responses" and clouds.azure.last.json["model"] == "prod-4o"

    clouds.bedrock.add(converse_stream())
    with client.responses.stream(model="cloud/converse", input="Hello") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed" and final.output_text == "Hello there"

    clouds.bedrock.add(Reply(body=load("anthropic_text.json")))
    assert client.responses.create(model="cloud/claude-bedrock", input="Hello").output_text
    clouds.vertex.add(Reply(body=load("anthropic_text.json")))
    assert client.responses.create(model="cloud/claude-vertex", input="Hello").output_text
    clouds.vertex.add(anthropic_sse(load("anthropic_stream_text.json")))
    with client.responses.stream(model="cloud/claude-vertex", input="Hello") as stream:
        assert stream.get_final_response().output_text
    clouds.vertex.add(Reply(body=load("gemini_text.json")))
    assert client.responses.create(model="cloud/gemini", input="Hello", max_output_tokens=4096).output_text
