"""Google Vertex AI: Gemini (``type: vertex``) and Claude (``type: vertex-anthropic``) on Vertex.

Addressing: ``{root}/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}``
with ``root`` the regional endpoint ``https://{region}-aiplatform.googleapis.com`` (or
``https://aiplatform.googleapis.com`` for ``region: global``; ``base_url`` replaces it, e.g. for a
Private Service Connect endpoint). Options: ``project`` (required), ``region`` (default
``us-central1``), ``credentials_file``.

- Gemini: ``:generateContent`` / ``:streamGenerateContent?alt=sse`` with the Gemini API's own body
  and answers, so everything but the address and the credentials is ``gemini.GeminiProvider``'s.
- Claude: ``publishers/anthropic/models/{model}:rawPredict`` / ``:streamRawPredict``. The body is
  Anthropic's Messages body without ``model`` (it is in the URL) and with
  ``anthropic_version: "vertex-2023-10-16"``; answers and SSE events are Anthropic's, so the
  chat translation and the Messages pass-through are ``anthropic.AnthropicProvider``'s.

Credentials: a service-account key file (``options.credentials_file``, else the file named by
``GOOGLE_APPLICATION_CREDENTIALS``): a JWT signed RS256 with its key is exchanged at its
``token_uri`` for an access token, sent as ``Authorization: Bearer`` and renewed before it expires
(``providers.cloudauth``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from modelgate.catalog.models import ProviderConfig
from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import ProviderContext
from modelgate.providers.cloudauth import google_token_source, load_service_account
from modelgate.providers.convert import body_model, body_object
from modelgate.providers.gemini import GeminiProvider, gemini_status_hint
from modelgate.providers.http import HTTPUpstream

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_SAFE = "-._~"


def vertex_base(name: str, config: ProviderConfig, publisher: str) -> str:
    """``{root}/v1/projects/{p}/locations/{r}/publishers/{publisher}``."""
    project = config.options.get("project")
    region = str(config.options.get("region") or "us-central1")
    if not isinstance(project, str) or not project:
        raise ValueError(f"provider {name}: options.project (the Google Cloud project id) is required")
    if not all(c.isalnum() or c == "-" for c in region):
        raise ValueError(f"provider {name}: options.region {region!r} is not a region name")
    if config.base_url:
        root = config.base_url.rstrip("/")
    elif region == "global":
        root = "https://aiplatform.googleapis.com"
    else:
        root = f"https://{region}-aiplatform.googleapis.com"
    return f"{root}/v1/projects/{quote(project, safe=_SAFE)}/locations/{region}/publishers/{publisher}"


def vertex_upstream(
    name: str, config: ProviderConfig, context: ProviderContext, publisher: str, **kw: Any
) -> HTTPUpstream:
    path = config.options.get("credentials_file")
    info = load_service_account(name, str(path) if path else None, context.environ)
    signer = google_token_source(name, info, config, context.user_agent, context.environ)
    return HTTPUpstream(
        name,
        config,
        default_headers={"User-Agent": context.user_agent},
        signer=signer,
        base_url=vertex_base(name, config, publisher),
        environ=context.environ,
        **kw,
    )


class VertexGeminiProvider(GeminiProvider):
    supports_embeddings = False  # Vertex embeds through :predict, another protocol

    def _upstream(self, name: str, config: ProviderConfig, context: ProviderContext) -> HTTPUpstream:
        return vertex_upstream(name, config, context, "google", status_hint=gemini_status_hint)


class VertexAnthropicProvider(AnthropicProvider):
    def _upstream(self, name: str, config: ProviderConfig, context: ProviderContext) -> HTTPUpstream:
        return vertex_upstream(name, config, context, "anthropic")

    @staticmethod
    def _path(model: str, stream: bool) -> str:
        return f"/models/{quote(model, safe=_SAFE + '@')}:{'streamRawPredict' if stream else 'rawPredict'}"

    def _route(self, body: dict[str, Any], *, stream: bool) -> tuple[str, dict[str, Any]]:
        model = str(body.pop("model"))
        body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        return self._path(model, stream), body

    def _route_raw(self, body: bytes, headers: Mapping[str, str], *, stream: bool) -> tuple[str, bytes]:
        data = body_object(body)
        model = body_model(data)
        data.setdefault("anthropic_version", VERTEX_ANTHROPIC_VERSION)
        return self._path(model, stream), orjson.dumps(data)

    async def count_tokens(self, dialect: str, body: bytes, headers: Mapping[str, str]) -> int | None:
        return None  # the door estimates


def create(name: str, config: ProviderConfig, context: ProviderContext) -> VertexGeminiProvider:
    return VertexGeminiProvider(name, config, context)


def create_anthropic(name: str, config: ProviderConfig, context: ProviderContext) -> VertexAnthropicProvider:
    return VertexAnthropicProvider(name, config, context)
