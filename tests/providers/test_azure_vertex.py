"""Azure OpenAI and Vertex AI specifics, against their protocol fakes (which check the addressing,
the api-key / Entra ID tokens and the service-account JWT exchange themselves); the shared contract
is in test_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import UpstreamStatusError
from modelgate.providers.base import Provider, ProviderContext
from modelgate.providers.registry import ProviderTypeRegistry
from modelgate.providers.vertex import vertex_base
from tests.fakes import Reply, load
from tests.fakes.anthropic_server import anthropic_sse
from tests.fakes.azure_server import AzureFake
from tests.fakes.calls import build_call, provider_config
from tests.fakes.vertex_server import VertexFake

HI = [{"role": "user", "content": "Hello"}]
OPENAI_TEXT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}
ENTRA = {"tenant_id": "tenant-1", "client_id": "client-1", "client_secret": "secret-1"}


def _make(
    type_: str, base_url: str, *, key: str | None = None, env: dict[str, str] | None = None, **options: Any
) -> Provider:
    config = provider_config(type_, base_url, api_key=key, options=options)
    context = ProviderContext(environ=env or {})
    provider: Provider = ProviderTypeRegistry.with_defaults().factory(type_)("cloud", config, context)
    return provider


@pytest.fixture
async def azure() -> AsyncIterator[AzureFake]:
    async with AzureFake(deployments=("prod-4o",)) as fake:
        yield fake


@pytest.fixture
async def vertex() -> AsyncIterator[VertexFake]:
    async with VertexFake() as fake:
        yield fake


async def test_azure_api_key_deployment_and_version(azure: AzureFake) -> None:
    p = _make("azure", azure.url, key="azure-key", api_version="2024-06-01")
    azure.add(Reply(body=OPENAI_TEXT))
    call = build_call("openai/gpt-4o", {"messages": HI})
    call.upstream_model = "prod-4o"
    try:
        result = await p.complete(call)
    finally:
        await p.aclose()
    assert result.choices[0]["message"]["content"] == "Hi"
    sent = azure.last
    assert sent.path == "/openai/deployments/prod-4o/chat/completions"
    assert sent.query == {"api-version": "2024-06-01"}
    assert sent.headers["api-key"] == "azure-key" and "Authorization" not in sent.headers


async def test_azure_entra_token_fetched_once_and_reused(azure: AzureFake) -> None:
    p = _make("azure", azure.url, entra={**ENTRA, "authority": azure.url})
    call = build_call("openai/gpt-4o", {"messages": HI})
    call.upstream_model = "prod-4o"
    try:
        for _ in range(3):
            azure.add(Reply(body=OPENAI_TEXT))
            await p.complete(call)
    finally:
        await p.aclose()
    assert azure.issued == 1
    assert azure.last.headers["Authorization"].startswith("Bearer ") and "api-key" not in azure.last.headers
    assert len(azure.data_requests()) == 3


async def test_azure_entra_token_renewed_before_expiry() -> None:
    # A token that lives less than the refresh margin is renewed on every call.
    async with AzureFake(deployments=("prod-4o",), token_lifetime=60) as fake:
        p = _make("azure", fake.url, entra={**ENTRA, "authority": fake.url})
        call = build_call("openai/gpt-4o", {"messages": HI})
        call.upstream_model = "prod-4o"
        try:
            for _ in range(2):
                fake.add(Reply(body=OPENAI_TEXT))
                await p.complete(call)
        finally:
            await p.aclose()
        assert fake.issued == 2


async def test_azure_entra_refused_secret_is_operator_error(azure: AzureFake) -> None:
    p = _make("azure", azure.url, entra={**ENTRA, "client_secret": "wrong-secret", "authority": azure.url})
    try:
        with pytest.raises(UpstreamStatusError) as info:
            await p.complete(build_call("openai/gpt-4o", {"messages": HI}))
    finally:
        await p.aclose()
    err = info.value
    assert (err.status_code, err.retryable) == (502, False)
    assert "wrong-secret" not in err.message and azure.data_requests() == []


async def test_azure_unknown_deployment_and_responses_path(azure: AzureFake) -> None:
    p = _make("azure", azure.url, key="azure-key", responses=True)
    try:
        with pytest.raises(UpstreamStatusError) as info:
            await p.complete(build_call("openai/gpt-4o", {"messages": HI}))  # deployment "gpt-4o"
        assert info.value.status_code == 404
        body = {"id": "resp_1", "object": "response", "status": "completed", "output": [], "usage": {}}
        azure.add(Reply(body=body))
        assert "openai-responses" in p.dialects
        await p.passthrough("openai-responses", b'{"model":"prod-4o","input":"hi"}', {})  # type: ignore[attr-defined]
    finally:
        await p.aclose()
    assert azure.last.path == "/openai/responses" and azure.last.query["api-version"]


async def test_azure_responses_compact_and_count_paths(azure: AzureFake) -> None:
    p = _make("azure", azure.url, key="azure-key", responses=True)
    try:
        compaction = {"id": "resp_1", "object": "response.compaction", "output": [], "usage": {}}
        azure.add(Reply(body=compaction), Reply(body={"object": "response.input_tokens", "input_tokens": 7}))
        await p.passthrough("openai-responses-compact", b'{"model":"prod-4o","input":"hi"}', {})  # type: ignore[attr-defined]
        assert azure.last.path == "/openai/responses/compact" and azure.last.query["api-version"]
        count = await p.count_tokens("openai-responses", b'{"model":"prod-4o","input":"hi"}', {})  # type: ignore[attr-defined]
        assert count == 7 and azure.last.path == "/openai/responses/input_tokens"
    finally:
        await p.aclose()


def test_azure_needs_exactly_one_credential() -> None:
    with pytest.raises(ValueError, match=r"api_key or options\.entra"):
        _make("azure", "https://r.openai.azure.com")
    with pytest.raises(ValueError, match="not both"):
        _make("azure", "https://r.openai.azure.com", key="k", entra=ENTRA)


def test_vertex_regional_and_global_endpoints() -> None:
    conf = ProviderConfig(type="vertex", options={"project": "p1", "region": "europe-west4"})
    assert vertex_base("v", conf, "google") == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/publishers/google"
    )
    conf = ProviderConfig(type="vertex", options={"project": "p1", "region": "global"})
    assert vertex_base("v", conf, "anthropic").startswith("https://aiplatform.googleapis.com/v1/projects/p1/")
    with pytest.raises(ValueError, match="project"):
        vertex_base("v", ProviderConfig(type="vertex"), "google")


async def test_vertex_gemini_with_credentials_from_environment(vertex: VertexFake) -> None:
    env = {"GOOGLE_APPLICATION_CREDENTIALS": vertex.credentials_file}
    p = _make("vertex", vertex.url, env=env, project=vertex.project, region=vertex.region)
    try:
        for _ in range(2):
            vertex.add(Reply(body=load("gemini_text.json")))
            result = await p.complete(build_call("google/gemini-2.5-pro", {"messages": HI}))
    finally:
        await p.aclose()
    assert result.choices[0]["message"]["content"]
    assert vertex.model_and_method() == ("google", "gemini-2.5-pro", "generateContent")
    assert vertex.issued == 1  # one JWT exchange, the token reused
    assert "generationConfig" in vertex.last.json


async def test_vertex_claude_body_and_stream(vertex: VertexFake) -> None:
    p = _make("vertex-anthropic", vertex.url, **vertex.provider_options())
    try:
        vertex.add(Reply(body=load("anthropic_text.json")))
        await p.complete(build_call("anthropic/claude-sonnet-4.5", {"messages": HI}))
        sent = vertex.last.json
        assert sent["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent
        assert vertex.model_and_method() == ("anthropic", "claude-sonnet-4-5-20250929", "rawPredict")
        vertex.add(anthropic_sse(load("anthropic_stream_text.json")))
        chunks = [
            c
            async for c in p.stream(
                build_call("anthropic/claude-sonnet-4.5", {"messages": HI, "stream": True})
            )
        ]
        assert chunks[-1].usage is not None
        assert vertex.model_and_method()[2] == "streamRawPredict" and vertex.last.json["stream"] is True
        # Messages pass-through: the client's model moves into the URL.
        vertex.add(Reply(body=load("anthropic_text.json")))
        body = orjson.dumps({"model": "claude-x@20250101", "max_tokens": 10, "messages": HI})
        reply = await p.passthrough("anthropic-messages", body, {"anthropic-version": "2023-06-01"})  # type: ignore[attr-defined]
    finally:
        await p.aclose()
    assert reply.usage.prompt_tokens > 0
    assert vertex.model_and_method()[1] == "claude-x@20250101" and "model" not in vertex.last.json


def _forged_key_file(genuine: str, tmp_path: Path) -> Path:
    """The genuine key file with another private key in it."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = orjson.loads(Path(genuine).read_bytes())
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    forged = tmp_path / "forged.json"
    forged.write_bytes(orjson.dumps(info))
    return forged


async def test_vertex_key_the_token_endpoint_does_not_trust(vertex: VertexFake, tmp_path: Path) -> None:
    forged = _forged_key_file(vertex.credentials_file, tmp_path)
    p = _make(
        "vertex", vertex.url, project=vertex.project, region=vertex.region, credentials_file=str(forged)
    )
    try:
        with pytest.raises(UpstreamStatusError) as info_:
            await p.complete(build_call("google/gemini-2.5-pro", {"messages": HI}))
    finally:
        await p.aclose()
    assert (info_.value.status_code, info_.value.retryable) == (502, False)
    assert vertex.issued == 0 and vertex.data_requests() == []


def test_vertex_without_credentials_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        _make("vertex", "http://127.0.0.1:9", project="p")
    bad = tmp_path / "k.json"
    bad.write_text('{"type": "authorized_user"}')
    with pytest.raises(ValueError, match="not a service-account key file"):
        _make("vertex", "http://127.0.0.1:9", project="p", credentials_file=str(bad))
