"""Azure OpenAI, ``type: azure``: the OpenAI-compatible adapter with Azure's addressing and credentials.

``base_url`` is the resource endpoint (``https://<resource>.openai.azure.com``); a route's upstream
``model`` is the **deployment** name. Requests go to

- ``POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version={api_version}``
- ``POST {endpoint}/openai/deployments/{deployment}/embeddings?api-version={api_version}``
- ``POST {endpoint}/openai/responses?api-version={responses_api_version}`` (``options.responses:
  true``; the deployment travels as the body's ``model``, so Responses requests pass through)

The body, the answer, streams and errors are OpenAI's, so everything else is
``openai_compat.OpenAICompatProvider``'s. Credentials: ``api_key`` is sent as the ``api-key``
header; or ``options.entra`` (``tenant_id``, ``client_id``, ``client_secret``, optional
``authority``/``scope``) obtains Microsoft Entra ID tokens by client credentials and sends them as
``Authorization: Bearer``, renewed before they expire (``providers.cloudauth``).
"""

from __future__ import annotations

from urllib.parse import quote

from modelgate.catalog.models import ProviderConfig
from modelgate.providers.base import ProviderContext
from modelgate.providers.cloudauth import entra_token_source
from modelgate.providers.http import HTTPUpstream
from modelgate.providers.openai_compat import OpenAICompatProvider

API_VERSION = "2024-10-21"  # the current GA data-plane version
RESPONSES_API_VERSION = "2025-04-01-preview"


class AzureOpenAIProvider(OpenAICompatProvider):
    def __init__(self, name: str, config: ProviderConfig, context: ProviderContext) -> None:
        opts = config.options
        self._version = quote(str(opts.get("api_version") or API_VERSION), safe="-.")
        self._responses_version = quote(
            str(opts.get("responses_api_version") or RESPONSES_API_VERSION), safe="-."
        )
        super().__init__(name, config, context)

    def _upstream(self, name: str, config: ProviderConfig, context: ProviderContext) -> HTTPUpstream:
        if not config.base_url:
            raise ValueError(f"provider {name}: base_url (the Azure OpenAI resource endpoint) is required")
        base = config.base_url.rstrip("/")
        base = base if base.endswith("/openai") else f"{base}/openai"
        headers = {"User-Agent": context.user_agent}
        entra = config.options.get("entra")
        if entra is not None and config.api_key:
            raise ValueError(f"provider {name}: set api_key or options.entra, not both")
        if entra is None and not config.api_key:
            raise ValueError(f"provider {name}: Azure OpenAI needs api_key or options.entra")
        signer = None
        if entra is not None:
            signer = entra_token_source(name, entra, config, context.user_agent, context.environ)
        else:
            headers["api-key"] = str(config.api_key)
        return HTTPUpstream(
            name, config, default_headers=headers, signer=signer, base_url=base, environ=context.environ
        )

    def _path(self, endpoint: str, model: str) -> str:
        if endpoint == "responses" or endpoint.startswith("responses/"):  # /compact, /input_tokens
            return f"/{endpoint}?api-version={self._responses_version}"
        deployment = quote(model, safe="-._~")
        return f"/deployments/{deployment}/{endpoint}?api-version={self._version}"


def create(name: str, config: ProviderConfig, context: ProviderContext) -> AzureOpenAIProvider:
    return AzureOpenAIProvider(name, config, context)
