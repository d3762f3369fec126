"""Egress: every provider through an authenticating proxy (absolute form for http upstreams, CONNECT
tunnels with TLS end to end for https ones, token endpoints included), the proxy settings'
resolution (options, HTTPS_PROXY/HTTP_PROXY/NO_PROXY), a custom CA bundle and mutual TLS."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from modelgate.errors import UpstreamConnectionError
from modelgate.providers.base import Provider, ProviderContext
from modelgate.providers.proxy import bypassed, parse_proxy, resolve_proxy
from modelgate.providers.registry import ProviderTypeRegistry
from tests.fakes import Reply
from tests.fakes.azure_server import AzureFake
from tests.fakes.calls import build_call, provider_config
from tests.fakes.connect_proxy import ConnectProxy
from tests.providers.test_contract import KITS, Kit

HI = [{"role": "user", "content": "Hello"}]
ENTRA = {"tenant_id": "tenant-1", "client_id": "client-1", "client_secret": "secret-1"}
CHAT = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "via tunnel"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def test_options_win_then_the_environment() -> None:
    env = {"HTTPS_PROXY": "http://u:p%40ss@proxy.corp:3128", "http_proxy": "proxy.corp:8080", "NO_PROXY": ""}
    p = resolve_proxy("x", "https://api.example.com/v1", {}, env)
    assert p is not None and (p.host, p.port) == ("proxy.corp", 3128)
    assert p.authorization == "Basic dTpwQHNz" and "p@ss" not in repr(p)  # u:p@ss
    p = resolve_proxy("x", "http://api.example.com/v1", {}, env)
    assert p is not None and (p.port, p.authorization) == (8080, None)
    explicit = resolve_proxy("x", "https://api.example.com", {"proxy": "http://other:1"}, env)
    assert explicit is not None and explicit.host == "other"
    assert resolve_proxy("x", "https://api.example.com", {"proxy": "none"}, env) is None
    assert resolve_proxy("x", "https://api.example.com", {}, None) is None  # no environment given
    assert resolve_proxy("x", "https://127.0.0.1:8443", {}, env) is None  # loopback: never the env's
    assert resolve_proxy("x", "https://localhost", {}, env) is None
    assert resolve_proxy("x", "https://127.0.0.1:8443", {"proxy": "http://p:1"}, env) is not None
    with pytest.raises(ValueError, match="http:// URL"):
        parse_proxy("https://proxy.corp:443", "test")


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "skip"),
    [
        ("api.example.com", 443, "example.com", True),
        ("api.example.com", 443, ".example.com", True),
        ("example.com", 443, ".example.com", True),
        ("badexample.com", 443, "example.com", False),
        ("10.1.2.3", 443, "10.0.0.0/8", True),
        ("10.1.2.3", 443, "10.1.2.4", False),
        ("api.example.com", 443, "api.example.com:8443", False),
        ("api.example.com", 8443, "api.example.com:8443", True),
        ("anything", 80, " * ", True),
        ("api.openai.com", 443, "internal, .corp", False),
    ],
)
def test_no_proxy_rules(host: str, port: int, no_proxy: str, skip: bool) -> None:
    assert bypassed(host, port, no_proxy) is skip
    env = {"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": no_proxy}
    assert (resolve_proxy("x", f"https://{host}:{port}", {}, env) is None) is skip


@pytest.fixture
async def proxy() -> AsyncIterator[ConnectProxy]:
    async with ConnectProxy() as p:
        yield p


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    folder = tmp_path_factory.mktemp("tls")
    out: dict[str, str] = {}
    for who, san in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "subjectAltName=DNS:gateway")):
        cert, key = str(folder / f"{who}.pem"), str(folder / f"{who}-key.pem")
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert),
                *("-days", "1", "-subj", f"/CN={who}", "-addext", san),
            ],
            check=True,
            capture_output=True,
        )
        out[who], out[f"{who}-key"] = cert, key
    return out


def _server_tls(certs: dict[str, str], *, client_ca: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server"], certs["server-key"])
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


def _azure(url: str, **options: Any) -> Provider:
    config = provider_config(
        "azure", url, api_key=None, options={"entra": {**ENTRA, "authority": url}, **options}
    )
    provider: Provider = ProviderTypeRegistry.with_defaults().factory("azure")(
        "azure", config, ProviderContext(environ={})
    )
    return provider


def _call() -> Any:
    call = build_call("openai/gpt-4o", {"messages": HI})
    call.upstream_model = "prod-4o"
    return call


@pytest.mark.parametrize("tunnel", [False, True], ids=["http-absolute-form", "https-connect"])
@pytest.mark.parametrize("name", sorted(KITS))
async def test_every_provider_through_the_authenticating_proxy(
    name: str, tunnel: bool, proxy: ConnectProxy, certs: dict[str, str]
) -> None:
    """Each provider (token endpoints included) whole and streamed through the proxy: over http in
    absolute form, or over https through CONNECT tunnels (TLS end to end, the fake's certificate
    trusted through tls_ca_file)."""
    kit: Kit = KITS[name]
    server = kit.fake()
    await server.start(tls=_server_tls(certs) if tunnel else None)
    try:
        options = {**kit.options(server), "proxy": proxy.url}
        if tunnel:
            options["tls_ca_file"] = certs["server"]
        config = provider_config(kit.type, str(server.base_url), api_key=kit.key, options=options)  # type: ignore[attr-defined]
        p: Provider = ProviderTypeRegistry.with_defaults().factory(kit.type)(
            name, config, ProviderContext(environ={})
        )
        server.add(kit.text(), kit.stream())
        call = build_call(kit.model, {"messages": HI})
        call.upstream_model = kit.upstream or call.upstream_model
        stream_call = build_call(kit.model, {"messages": HI, "stream": True})
        stream_call.upstream_model = call.upstream_model
        try:
            whole = await p.complete(call)
            chunks = [c async for c in p.stream(stream_call)]
        finally:
            await p.aclose()
    finally:
        await server.stop()
    assert whole.choices[0]["message"]["content"] and chunks[-1].usage is not None
    token_calls = 1 if name in ("azure-entra", "vertex", "vertex-anthropic") else 0
    assert len(server.requests) == 2 + token_calls and proxy.refused == 0
    target = f"127.0.0.1:{server.port}"
    if tunnel:  # one kept-alive tunnel for the data plane, one for the token endpoint's client
        assert proxy.tunnels == [target] * (1 + token_calls) and proxy.forwarded == []
    else:
        assert len([f for f in proxy.forwarded if f.startswith(f"{target}/")]) == 2 + token_calls
    assert all("proxy-authorization" not in {k.lower() for k in r.headers} for r in server.requests)


async def test_https_through_a_connect_tunnel_with_a_private_ca(
    certs: dict[str, str], proxy: ConnectProxy
) -> None:
    fake = AzureFake(api_key=None, deployments=("prod-4o",))
    await fake.start(tls=_server_tls(certs))
    p = _azure(fake.url, proxy=proxy.url, tls_ca_file=certs["server"])
    fake.add(Reply(body=CHAT), Reply(body=CHAT))
    try:
        for _ in range(2):
            result = await p.complete(_call())
    finally:
        await p.aclose()
        await fake.stop()
    assert result.choices[0]["message"]["content"] == "via tunnel"
    # One tunnel for the token endpoint's client, one for the data plane's (kept alive for both calls).
    assert proxy.tunnels == [f"127.0.0.1:{fake.port}"] * 2 and proxy.forwarded == []
    assert fake.issued == 1 and len(fake.data_requests()) == 2


async def test_wrong_proxy_credentials(certs: dict[str, str], proxy: ConnectProxy) -> None:
    fake = AzureFake(api_key="azure-key", deployments=("prod-4o",))
    await fake.start(tls=_server_tls(certs))
    wrong = proxy.url.replace(":proxy-secret@", ":guess@")
    config = provider_config(
        "azure", fake.url, api_key="azure-key", options={"proxy": wrong, "tls_ca_file": certs["server"]}
    )
    p: Provider = ProviderTypeRegistry.with_defaults().factory("azure")(
        "azure", config, ProviderContext(environ={})
    )
    try:
        with pytest.raises(UpstreamConnectionError, match="proxy credentials"):
            await p.complete(_call())
    finally:
        await p.aclose()
        await fake.stop()
    assert proxy.refused == 1 and fake.requests == []


async def test_mutual_tls(certs: dict[str, str]) -> None:
    fake = AzureFake(api_key="azure-key", deployments=("prod-4o",))
    await fake.start(tls=_server_tls(certs, client_ca=certs["client"]))
    tls = {"tls_ca_file": certs["server"]}
    mutual = {**tls, "tls_client_cert": certs["client"], "tls_client_key": certs["client-key"]}
    registry = ProviderTypeRegistry.with_defaults()
    without = registry.factory("azure")(
        "a", provider_config("azure", fake.url, api_key="azure-key", options=tls), ProviderContext(environ={})
    )
    with_cert = registry.factory("azure")(
        "b",
        provider_config("azure", fake.url, api_key="azure-key", options=mutual),
        ProviderContext(environ={}),
    )
    fake.add(Reply(body=CHAT))
    try:
        with pytest.raises(UpstreamConnectionError):
            await without.complete(_call())
        assert (await with_cert.complete(_call())).choices[0]["message"]["content"] == "via tunnel"
    finally:
        await without.aclose()
        await with_cert.aclose()
        await fake.stop()


def test_bad_client_certificate_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    config = provider_config(
        "openai", "https://api.example.com/v1", api_key="k", options={"tls_client_cert": str(bad)}
    )
    with pytest.raises(ValueError, match="tls_client_cert"):
        ProviderTypeRegistry.with_defaults().factory("openai")("o", config, ProviderContext(environ={}))
