"""A fake of Azure OpenAI's data plane and of Microsoft Entra ID's token endpoint, in one server.

- ``POST /openai/deployments/{deployment}/chat/completions|embeddings?api-version=...`` and
  ``POST /openai/responses?api-version=...`` (and ``/responses/compact``, ``/input_tokens``): an
  ``api-version`` query is required (400 without),
  the deployment must be one of ``deployments`` (404 ``DeploymentNotFound``), and the caller must
  present the ``api-key`` header or an ``Authorization: Bearer`` token this server issued and that
  has not expired (401 otherwise, in Azure's error shape).
- ``POST /{tenant}/oauth2/v2.0/token``: client credentials (``grant_type``, ``client_id``,
  ``client_secret``, ``scope`` checked as a form; ``invalid_client`` 401 when wrong) issue a fresh
  opaque token valid ``token_lifetime`` seconds. ``issued`` counts them.

Replies are scripted as for every fake (``add(Reply | SSEReply)``); bodies are OpenAI's.
"""

from __future__ import annotations

import re
import secrets
import time

from aiohttp import web

from tests.fakes import ScriptedServer

_DATA = re.compile(
    r"^/openai/(deployments/(?P<deployment>[^/]+)/(?P<op>chat/completions|embeddings)|responses(/compact|/input_tokens)?)$"
)
_TOKEN = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
SCOPE = "https://cognitiveservices.azure.com/.default"


def _azure_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class AzureFake(ScriptedServer):
    def __init__(
        self,
        *,
        api_key: str | None = "azure-key",
        deployments: tuple[str, ...] = ("gpt-4o-prod",),
        tenant: str = "tenant-1",
        client_id: str = "client-1",
        client_secret: str = "secret-1",
        token_lifetime: int = 3600,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.deployments = deployments
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.token_lifetime = token_lifetime
        self._tokens: dict[str, float] = {}
        self.issued = 0

    @property
    def base_url(self) -> str:
        return self.url  # the resource endpoint; the adapter appends /openai

    def data_requests(self) -> list[str]:
        return [r.path for r in self.requests if r.path.startswith("/openai/")]

    async def guard(self, request: web.Request) -> web.StreamResponse | None:
        token = _TOKEN.match(request.path)
        if token is not None:
            return await self._token(request, token["tenant"])
        match = _DATA.match(request.path)
        if request.method != "POST" or match is None:
            return _azure_error(404, "404", "Resource not found")
        if not request.query.get("api-version"):
            return _azure_error(400, "BadRequest", "Missing API version")
        deployment = match["deployment"]
        if deployment is not None and deployment not in self.deployments:
            return _azure_error(404, "DeploymentNotFound", f"The API deployment {deployment} does not exist")
        key = request.headers.get("api-key")
        bearer = request.headers.get("Authorization", "")
        if key is not None:
            if key != self.api_key:
                return _azure_error(401, "401", "Access denied due to invalid subscription key")
        elif bearer.startswith("Bearer "):
            expires = self._tokens.get(bearer[7:])
            if expires is None or expires < time.monotonic():
                return _azure_error(401, "401", "Access token is missing, invalid or expired")
        else:
            return _azure_error(401, "401", "Access denied due to missing subscription key")
        return None

    async def _token(self, request: web.Request, tenant: str) -> web.Response:
        form = await request.post()
        if request.method != "POST" or tenant != self.tenant:
            return web.json_response({"error": "invalid_request"}, status=400)
        if form.get("grant_type") != "client_credentials" or form.get("scope") != SCOPE:
            return web.json_response(
                {"error": "invalid_request", "error_description": "bad grant"}, status=400
            )
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return web.json_response(
                {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret"},
                status=401,
            )
        token = secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.token_lifetime
        self.issued += 1
        return web.json_response(
            {"token_type": "Bearer", "expires_in": self.token_lifetime, "access_token": token}
        )
