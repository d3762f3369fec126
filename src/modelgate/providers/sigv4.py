"""AWS Signature Version 4 (``AWS4-HMAC-SHA256``) and the standard AWS credential chain.

Signing (AWS General Reference, "Signature Version 4 signing process"): a canonical request
(method, the URI path encoded once more segment by segment as every service but S3 expects, the
sorted query, the signed headers lower-cased and sorted, the SHA-256 of the body), a string to sign
over its hash with the credential scope ``{date}/{region}/{service}/aws4_request``, and an HMAC
chain from ``"AWS4" + secret`` through date, region, service and ``aws4_request``. Signed headers:
``host``, ``x-amz-date`` and, with temporary credentials, ``x-amz-security-token``. Checked against
the published test-suite vectors (``post-vanilla`` ...) in tests/providers/test_sigv4.py.

Credentials (first found wins, as the AWS SDKs look): the provider's ``options`` (``access_key_id``,
``secret_access_key``, ``session_token``; usually ``${ENV}`` references), the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), then the shared
credentials file (``AWS_SHARED_CREDENTIALS_FILE`` or ``~/.aws/credentials``) for the profile
``options.profile`` / ``AWS_PROFILE`` / ``default``.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class AWSCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    source: str = ""

    def __repr__(self) -> str:  # never print the secret
        return f"AWSCredentials({self.access_key_id[:4]}..., source={self.source!r})"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        key, _, value = part.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_uri(path: str) -> str:
    """The path as sent, each segment URI-encoded once more (non-S3 services)."""
    return quote(path or "/", safe="/~")


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def sign_headers(
    *,
    method: str,
    host: str,
    target: str,
    body: bytes,
    credentials: AWSCredentials,
    region: str,
    service: str,
    now: datetime,
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers that sign one request (``X-Amz-Date``, ``X-Amz-Security-Token`` when the
    credentials are temporary, ``Authorization``); ``target`` is the path with its query as sent,
    ``headers`` further headers to sign as sent."""
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = {"X-Amz-Date": amz_date}
    if credentials.session_token:
        out["X-Amz-Security-Token"] = credentials.session_token
    signed = {"host": host, **{k.lower(): v for k, v in (headers or {}).items()}}
    signed.update({k.lower(): v for k, v in out.items()})
    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{' '.join(signed[n].split())}\n" for n in names)
    signed_names = ";".join(names)
    path, _, query = target.partition("?")
    creq = "\n".join(
        [method, canonical_uri(path), canonical_query(query), canonical_headers, signed_names, _sha256(body)]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{_sha256(creq.encode())}"
    key = signing_key(credentials.secret_access_key, amz_date[:8], region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return out


class SigV4Signer:
    """``providers.http.RequestSigner`` for one region and service with fixed credentials."""

    def __init__(self, credentials: AWSCredentials, *, region: str, service: str) -> None:
        self.credentials = credentials
        self.region = region
        self.service = service

    async def sign(self, method: str, host: str, path: str, body: bytes) -> Mapping[str, str]:
        return sign_headers(
            method=method,
            host=host,
            target=path,
            body=body,
            credentials=self.credentials,
            region=self.region,
            service=self.service,
            now=datetime.now(UTC),
        )

    async def aclose(self) -> None:
        return None


def resolve_credentials(provider: str, options: Mapping[str, Any], env: Mapping[str, str]) -> AWSCredentials:
    """The first credentials of the chain (module docstring); a ValueError naming what was tried."""
    key, secret = options.get("access_key_id"), options.get("secret_access_key")
    if key or secret:
        if not (key and secret):
            raise ValueError(f"provider {provider}: options need both access_key_id and secret_access_key")
        token = options.get("session_token")
        return AWSCredentials(str(key), str(secret), str(token) if token else None, "options")
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return AWSCredentials(
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
            env.get("AWS_SESSION_TOKEN") or None,
            "environment",
        )
    profile = str(
        options.get("profile") or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    )
    home = env.get("HOME") or os.path.expanduser("~")
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path(home) / ".aws" / "credentials")
    found = _from_file(path, profile)
    if found is not None:
        return found
    raise ValueError(
        f"provider {provider}: no AWS credentials (options.access_key_id/secret_access_key, "
        f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or profile {profile!r} in {path})"
    )


def _from_file(path: Path, profile: str) -> AWSCredentials | None:
    parser = configparser.RawConfigParser()
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error):
        return None
    if not parser.has_section(profile):
        return None
    section = parser[profile]
    key, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    if not key or not secret:
        return None
    token = section.get("aws_session_token") or None
    return AWSCredentials(key.strip(), secret.strip(), token.strip() if token else None, f"profile {profile}")


def resolve_region(provider: str, options: Mapping[str, Any], env: Mapping[str, str]) -> str:
    region = options.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not isinstance(region, str) or not region or not all(c.isalnum() or c == "-" for c in region):
        raise ValueError(f"provider {provider}: options.region (or AWS_REGION) must name an AWS region")
    return region
