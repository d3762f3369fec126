"""Bearer tokens for cloud upstreams, fetched from a token endpoint and refreshed before they expire.

- ``entra_token_source``: Microsoft Entra ID client credentials (Azure OpenAI):
  ``POST {authority}/{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials``,
  ``client_id``, ``client_secret`` and ``scope`` (``https://cognitiveservices.azure.com/.default``).
- ``google_token_source``: a Google service account (Vertex AI): a JWT signed RS256 with the
  account's private key (``iss`` the account, ``aud`` the token URI, ``scope`` cloud-platform, one
  hour) exchanged at the key file's ``token_uri`` (``grant_type=urn:ietf:params:oauth:grant-type:
  jwt-bearer``) for an access token.

``BearerSigner`` puts the token in ``Authorization`` on every request (``providers.http``'s
``RequestSigner``). One fetch at a time: concurrent requests wait for the same token. A refused
exchange is the operator's credential problem (a 401 to the router: 502, not retried); an
unreachable or failing token endpoint is retryable like any upstream failure. Secrets never
appear in errors or logs.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import UpstreamConnectionError, UpstreamProtocolError, UpstreamTimeoutError
from modelgate.providers.http import tls_context, upstream_status_error
from modelgate.providers.httpclient import ConnectError, HTTPClient, HTTPClientError, ReadTimeout
from modelgate.providers.proxy import resolve_proxy
from modelgate.sanitize import upstream_text

REFRESH_MARGIN = 120.0  # seconds before expiry at which a token is renewed
ENTRA_AUTHORITY = "https://login.microsoftonline.com"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

# A token fetch: returns (access token, lifetime in seconds).
Fetch = Callable[[], Awaitable[tuple[str, float]]]


class BearerSigner:
    """``Authorization: Bearer <token>`` from a token source, cached until shortly before expiry."""

    def __init__(self, fetch: Fetch, *, close: Callable[[], Awaitable[None]] | None = None) -> None:
        self._fetch = fetch
        self._close = close
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many tokens were obtained (tests, metrics)

    async def token(self) -> str:
        if self._token and time.monotonic() < self._expires:
            return self._token
        async with self._lock:
            if not self._token or time.monotonic() >= self._expires:
                token, lifetime = await self._fetch()
                self.fetches += 1
                self._token = token
                self._expires = time.monotonic() + max(0.0, lifetime - REFRESH_MARGIN)
        return self._token

    async def sign(self, method: str, host: str, path: str, body: bytes) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    async def aclose(self) -> None:
        if self._close is not None:
            await self._close()


class TokenEndpoint:
    """POSTs a form to one OAuth token URL and reads ``access_token`` / ``expires_in``."""

    def __init__(
        self,
        provider: str,
        url: str,
        config: ProviderConfig,
        user_agent: str,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"provider {provider}: token URL {url!r} is not an http(s) URL")
        self.provider = provider
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        origin = f"{parts.scheme}://{parts.netloc}"
        t = config.timeouts
        self._client = HTTPClient(
            origin,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            connect_timeout=t.connect,
            read_timeout=t.first_byte,
            total_timeout=min(t.total, 60.0),
            ssl_context=tls_context(provider, config),
            proxy=resolve_proxy(provider, origin, config.options, environ),
        )

    async def exchange(self, form: Mapping[str, str]) -> tuple[str, float]:
        name = self.provider
        try:
            resp = await self._client.post(self._path, urlencode(form).encode())
            try:
                raw = await resp.read(256 * 1024)
            finally:
                resp.release()
        except ReadTimeout as exc:
            raise UpstreamTimeoutError(f"the token endpoint of {name} did not answer", provider=name) from exc
        except (ConnectError, HTTPClientError) as exc:
            raise UpstreamConnectionError(
                f"cannot reach the token endpoint of {name}: {exc}", provider=name
            ) from exc
        if resp.status >= 400:
            # invalid_client, invalid_grant, ...: the operator's credentials (never retried).
            status = 401 if resp.status < 500 and resp.status != 429 else resp.status
            raise upstream_status_error(
                name, status, upstream_text(raw), shown_status=resp.status, during="token endpoint answered"
            )
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"the token endpoint of {name} answered no JSON", provider=name
            ) from exc
        token = data.get("access_token") if isinstance(data, dict) else None
        lifetime = data.get("expires_in", 3600) if isinstance(data, dict) else None
        if isinstance(lifetime, str) and lifetime.isdigit():  # some endpoints send a string
            lifetime = int(lifetime)
        if not isinstance(token, str) or not token or not isinstance(lifetime, int | float):
            raise UpstreamProtocolError(
                f"the token endpoint of {name} answered no access token", provider=name
            )
        if "\r" in token or "\n" in token:
            raise UpstreamProtocolError(f"the token endpoint of {name} answered a bad token", provider=name)
        return token, float(lifetime)

    async def aclose(self) -> None:
        await self._client.aclose()


def entra_token_source(
    provider: str,
    settings: Any,
    config: ProviderConfig,
    user_agent: str,
    environ: Mapping[str, str] | None = None,
) -> BearerSigner:
    """Client credentials from ``options.entra``: ``tenant_id``, ``client_id``, ``client_secret``
    (``authority`` and ``scope`` optional)."""
    if not isinstance(settings, dict):
        raise ValueError(f"provider {provider}: options.entra must be a mapping")
    missing = [k for k in ("tenant_id", "client_id", "client_secret") if not settings.get(k)]
    if missing:
        raise ValueError(f"provider {provider}: options.entra needs {', '.join(missing)}")
    unknown = set(settings) - {"tenant_id", "client_id", "client_secret", "authority", "scope"}
    if unknown:
        raise ValueError(f"provider {provider}: options.entra: unknown keys {', '.join(sorted(unknown))}")
    authority = str(settings.get("authority") or ENTRA_AUTHORITY).rstrip("/")
    endpoint = TokenEndpoint(
        provider, f"{authority}/{settings['tenant_id']}/oauth2/v2.0/token", config, user_agent, environ
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": str(settings["client_id"]),
        "client_secret": str(settings["client_secret"]),
        "scope": str(settings.get("scope") or ENTRA_SCOPE),
    }

    async def fetch() -> tuple[str, float]:
        return await endpoint.exchange(form)

    return BearerSigner(fetch, close=endpoint.aclose)


# ---- Google service accounts ---------------------------------------------------------------------


def load_service_account(provider: str, path: str | None, env: Mapping[str, str]) -> dict[str, Any]:
    """The service-account key file named by ``path`` or else ``GOOGLE_APPLICATION_CREDENTIALS``."""
    source = path or env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not source:
        raise ValueError(
            f"provider {provider}: no Google credentials (options.credentials_file, or "
            "GOOGLE_APPLICATION_CREDENTIALS naming a service-account key file)"
        )
    try:
        info = orjson.loads(Path(source).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"provider {provider}: cannot read the service-account key file {source!r}") from exc
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError(f"provider {provider}: {source!r} is not a service-account key file")
    for key in ("client_email", "private_key", "token_uri"):
        if not isinstance(info.get(key), str) or not info[key]:
            raise ValueError(f"provider {provider}: the key file {source!r} has no {key}")
    return info


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_jwt(info: Mapping[str, Any], *, now: float, scope: str = GOOGLE_SCOPE) -> str:
    """The RS256 assertion a service account exchanges for an access token."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(str(info["private_key"]).encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the service account's private key is not an RSA key")
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if info.get("private_key_id"):
        header["kid"] = str(info["private_key_id"])
    claims = {
        "iss": info["client_email"],
        "scope": scope,
        "aud": info["token_uri"],
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def google_token_source(
    provider: str,
    info: Mapping[str, Any],
    config: ProviderConfig,
    user_agent: str,
    environ: Mapping[str, str] | None = None,
) -> BearerSigner:
    try:
        signed_jwt(info, now=time.time())  # a bad key stops the start, not the first request
    except (ValueError, TypeError) as exc:
        raise ValueError(f"provider {provider}: the service account's private key is unusable") from exc
    endpoint = TokenEndpoint(provider, str(info["token_uri"]), config, user_agent, environ)

    async def fetch() -> tuple[str, float]:
        assertion = signed_jwt(info, now=time.time())
        return await endpoint.exchange({"grant_type": JWT_BEARER, "assertion": assertion})

    return BearerSigner(fetch, close=endpoint.aclose)
