"""A fake of Google Vertex AI (Gemini and Claude publishers) and of Google's OAuth token endpoint.

- ``POST /token``: the JWT-bearer grant. The assertion's RS256 signature is verified with the
  service account's **public** key, and its claims checked (``iss`` the account, ``aud`` this token
  URI, the cloud-platform ``scope``, ``iat``/``exp`` current and at most an hour apart); a fresh
  opaque access token is issued (``issued`` counts them), else 400 ``invalid_grant``.
- ``POST /v1/projects/{p}/locations/{r}/publishers/google/models/{m}:generateContent`` and
  ``:streamGenerateContent`` (``alt=sse`` required), ``.../publishers/anthropic/models/{m}:rawPredict``
  and ``:streamRawPredict``: project and region must be this fake's, the bearer token one it issued
  (401 ``UNAUTHENTICATED`` otherwise). A Claude body must carry ``anthropic_version:
  vertex-2023-10-16`` and no ``model`` (400 otherwise, as Vertex answers), ``stream: true`` on
  ``:streamRawPredict``.

``credentials_file`` is a service-account key file (a fresh RSA key per session) naming this
fake's token URI; ``provider_options()`` the catalogue options of a provider that uses it.
"""

from __future__ import annotations

import base64
import re
import secrets
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes import ScriptedServer

_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/publishers/(?P<publisher>google|anthropic)"
    r"/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent|rawPredict|streamRawPredict)$"
)
CLIENT_EMAIL = "modelgate@proj-1.iam.gserviceaccount.com"
KEY_ID = "kid-1"


@cache
def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _google_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": code}}, status=status)


class VertexFake(ScriptedServer):
    def __init__(self, *, project: str = "proj-1", region: str = "us-central1") -> None:
        super().__init__()
        self.project, self.region = project, region
        self._tokens: dict[str, float] = {}
        self.issued = 0
        self._dir = tempfile.TemporaryDirectory()
        self.public_key = _private_key().public_key()

    async def stop(self) -> None:
        await super().stop()
        self._dir.cleanup()

    @property
    def base_url(self) -> str:
        return self.url  # the API root; the adapter appends /v1/projects/...

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def credentials_file(self) -> str:
        path = Path(self._dir.name) / "service-account.json"
        if not path.exists():
            pem = _private_key().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            info = {
                "type": "service_account",
                "project_id": self.project,
                "private_key_id": KEY_ID,
                "private_key": pem.decode(),
                "client_email": CLIENT_EMAIL,
                "client_id": "1234567890",
                "token_uri": self.token_uri,
            }
            path.write_bytes(orjson.dumps(info))
        return str(path)

    def provider_options(self) -> dict[str, Any]:
        return {"project": self.project, "region": self.region, "credentials_file": self.credentials_file}

    def model_and_method(self, index: int = -1) -> tuple[str, str, str]:
        m = _PATH.match(self.requests[index].path)
        assert m is not None
        return m["publisher"], m["model"], m["method"]

    def data_requests(self) -> list[Any]:
        return [r for r in self.requests if r.path.startswith("/v1/")]

    async def guard(self, request: web.Request) -> web.StreamResponse | None:
        if request.path == "/token":
            return await self._token(request)
        m = _PATH.match(request.path)
        if request.method != "POST" or m is None:
            return _google_error(404, "NOT_FOUND", f"{request.path} not found")
        if m["project"] != self.project or m["region"] != self.region:
            return _google_error(403, "PERMISSION_DENIED", "Permission denied on resource project")
        bearer = request.headers.get("Authorization", "")
        expires = self._tokens.get(bearer[7:]) if bearer.startswith("Bearer ") else None
        if expires is None or expires < time.monotonic():
            return _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if m["method"] == "streamGenerateContent" and request.query.get("alt") != "sse":
            return _google_error(400, "INVALID_ARGUMENT", "this fake serves alt=sse streams only")
        if m["publisher"] == "anthropic":
            body = orjson.loads(await request.read())
            problem = None
            if body.get("anthropic_version") != "vertex-2023-10-16":
                problem = "anthropic_version: vertex-2023-10-16 is required"
            elif "model" in body:
                problem = "model: Extra inputs are not permitted"
            elif (m["method"] == "streamRawPredict") != bool(body.get("stream")):
                problem = "stream must be true exactly on streamRawPredict"
            if problem:
                err = {"type": "error", "error": {"type": "invalid_request_error", "message": problem}}
                return web.json_response(err, status=400)
        return None

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        refused = web.json_response(
            {"error": "invalid_grant", "error_description": "Invalid JWT"}, status=400
        )
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return refused
        parts = str(form.get("assertion", "")).split(".")
        if len(parts) != 3:
            return refused
        try:
            header, claims = orjson.loads(_unb64(parts[0])), orjson.loads(_unb64(parts[1]))
            self.public_key.verify(
                _unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (ValueError, orjson.JSONDecodeError, InvalidSignature):
            return refused
        now = time.time()
        if (
            header.get("alg") != "RS256"
            or header.get("kid") != KEY_ID
            or claims.get("iss") != CLIENT_EMAIL
            or claims.get("aud") != self.token_uri
            or "https://www.googleapis.com/auth/cloud-platform" not in str(claims.get("scope", "")).split()
            or not claims.get("iat", 0) - 60 <= now < claims.get("exp", 0)
            or claims["exp"] - claims["iat"] > 3600
        ):
            return refused
        token = "ya29." + secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + 3599
        self.issued += 1
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
