"""HTTP plumbing shared by the network adapters: one connection pool per provider (the lean client
of ``providers.httpclient``), timeouts, and the translation of transport
failures into ``UpstreamError``.

Timeouts (``ProviderConfig.timeouts``): ``connect`` for the TCP/TLS connect, ``first_byte`` for the
response head and for every gap between stream reads, ``total`` for the whole exchange.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import (
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from modelgate.providers.httpclient import (
    ConnectError,
    HTTPClient,
    HTTPClientError,
    ReadTimeout,
    Response,
)
from modelgate.providers.proxy import resolve_proxy
from modelgate.sanitize import redact_secrets, upstream_text

log = logging.getLogger("modelgate.upstream")

_MAX_ERROR_BODY = 64 * 1024
_JSON = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@dataclass(slots=True)
class UpstreamErrorInfo:
    """What an adapter's ``status_hint`` may adjust about an upstream HTTP error."""

    status: int
    retry_after: float | None


# (status, parsed JSON body or None) -> adjusted info; lets an adapter read protocol-specific
# details (e.g. Gemini's ``API_KEY_INVALID`` arrives as a 400, its retry delay in ``RetryInfo``).
StatusHint = Callable[[int, Any], UpstreamErrorInfo | None]


class RequestSigner(Protocol):
    """Per-request credentials for upstreams that do not take a fixed key: a bearer token fetched
    and refreshed from a token endpoint (Entra ID, Google), or a signature over the request itself
    (AWS SigV4). ``path`` is the full request target (base path and query included) and ``host``
    the ``Host`` header as sent. Failures are raised as ``UpstreamError``s."""

    async def sign(self, method: str, host: str, path: str, body: bytes) -> Mapping[str, str]: ...

    async def aclose(self) -> None: ...


class HTTPUpstream:
    """A pooled HTTP client bound to one provider's base URL, credentials and timeouts."""

    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        *,
        default_headers: Mapping[str, str],
        status_hint: StatusHint | None = None,
        signer: RequestSigner | None = None,
        base_url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        base_url = base_url or config.base_url
        if not base_url:
            raise ValueError(f"provider {name}: base_url is required")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeouts = config.timeouts
        self._client = HTTPClient(
            self.base_url,
            headers={**_JSON, **default_headers, **config.headers},
            connect_timeout=self.timeouts.connect,
            read_timeout=self.timeouts.first_byte,
            total_timeout=self.timeouts.total,
            ssl_context=tls_context(name, config),
            proxy=resolve_proxy(name, self.base_url, config.options, environ),
        )
        self._status_hint = status_hint
        self._signer = signer

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._signer is not None:
            await self._signer.aclose()

    async def _send(self, path: str, body: Any, headers: Mapping[str, str] | None) -> Response:
        """POST JSON and wait for the response head (2xx, else ``UpstreamStatusError``)."""
        payload = body if isinstance(body, bytes) else orjson.dumps(body)  # bytes: passed through as is
        if self._signer is not None:
            signed = await self._signer.sign(
                "POST", self._client.host_header, self._client.prefix + path, payload
            )
            headers = {**headers, **signed} if headers else signed
        try:
            resp = await self._client.post(path, payload, headers)
        except HTTPClientError as exc:
            raise self._transport_error(exc, reading=False) from exc
        if resp.status >= 400:
            try:
                await self._raise_for_status(resp)
            finally:
                resp.release()
        return resp

    @asynccontextmanager
    async def post(
        self, path: str, body: Any, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Response]:
        """POST JSON; yields the response once its head arrived with a 2xx status (streams)."""
        resp = await self._send(path, body, headers)
        del body  # sent: not kept while the answer streams (an agent's request is hundreds of KB)
        try:
            yield resp
        except HTTPClientError as exc:
            raise self._transport_error(exc, reading=True) from exc
        finally:
            resp.release()

    async def post_json(self, path: str, body: Any, *, headers: Mapping[str, str] | None = None) -> Any:
        resp = await self._send(path, body, headers)
        try:
            raw = await resp.read()
        except HTTPClientError as exc:
            raise self._transport_error(exc, reading=True) from exc
        finally:
            resp.release()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"upstream {self.name} answered a body that is not JSON", provider=self.name
            ) from exc

    def _transport_error(
        self, exc: HTTPClientError, *, reading: bool
    ) -> UpstreamTimeoutError | UpstreamConnectionError:
        """The client's failure as an ``UpstreamError`` (a stall while reading a body, or no head).
        A plain ``try/except`` at each call site rather than a context manager: this is on every
        request's path, and a generator-based ``with`` costs a few microseconds each time."""
        if isinstance(exc, ReadTimeout):
            what = "stalled for more than" if reading else "sent no response within"
            return UpstreamTimeoutError(
                f"upstream {self.name} {what} {self.timeouts.first_byte:g}s", provider=self.name
            )
        if isinstance(exc, ConnectError):
            return UpstreamConnectionError(f"cannot reach upstream {self.name}: {exc}", provider=self.name)
        return UpstreamConnectionError(
            f"upstream {self.name} closed the connection: {exc}", provider=self.name
        )

    async def _raise_for_status(self, resp: Response) -> None:
        try:
            raw = await resp.read(_MAX_ERROR_BODY)
        except HTTPClientError:
            raw = b""
        kind = upstream_error_type(raw)
        retry_after = _parse_retry_after(resp.headers.get("retry-after"))
        status = resp.status
        if self._status_hint is not None:
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                parsed = None
            hint = self._status_hint(status, parsed)
            if hint is not None:
                status = hint.status
                retry_after = hint.retry_after if hint.retry_after is not None else retry_after
        err = upstream_status_error(
            self.name,
            status,
            upstream_text(raw) or resp.reason or None,
            retry_after=retry_after,
            shown_status=resp.status,
        )
        # The upstream's own error type (its wording, sanitised, is on the error already), for doors
        # that pass its dialect through.
        err.upstream_type = kind
        raise err


def tls_context(name: str, config: ProviderConfig) -> ssl.SSLContext | None:
    """``options.tls_ca_file``: trust this PEM bundle instead of the system's CAs (an upstream
    behind a private CA); ``options.tls_client_cert`` (+ ``tls_client_key`` when the key is in
    another file): present this client certificate (mutual TLS). None keeps the defaults."""
    ca_file = config.options.get("tls_ca_file")
    cert = config.options.get("tls_client_cert")
    key = config.options.get("tls_client_key")
    if ca_file is None and cert is None:
        if key is not None:
            raise ValueError(f"provider {name}: options.tls_client_key needs tls_client_cert")
        return None
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"provider {name}: options.tls_ca_file {ca_file!r} is not a CA bundle: {exc}"
        ) from exc
    if cert is not None:
        try:
            context.load_cert_chain(str(cert), str(key) if key is not None else None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"provider {name}: options.tls_client_cert/tls_client_key: not a certificate and key: {exc}"
            ) from exc
    return context


def upstream_status_error(
    provider: str,
    status: int,
    upstream_message: str | None,
    *,
    retry_after: float | None = None,
    shown_status: int | None = None,
    during: str = "answered HTTP",
) -> UpstreamStatusError:
    """The error for an upstream's HTTP error ``status``: a message of ours naming the provider and
    status for the client; the upstream's own text (sanitised) goes to the server log and stays on
    the error as ``upstream_message`` (a door that must pass an upstream's wording through, such as
    Anthropic's, can use it).

    Only when the upstream says the *request* was invalid (400, 413, 422) does its reason follow
    ours — sanitised, one line, secrets redacted — because it is about what the client sent
    ("temperature must be at most 2"); credential, quota and server failures never show it."""
    message = upstream_message and redact_secrets(upstream_message)
    shown = shown_status if shown_status is not None else status
    log.warning("upstream %s %s %s: %s", provider, during, shown, message or "(no message)")
    text = f"upstream {provider} {during} {shown}: {_status_meaning(status, retry_after)}"
    if message and status in (400, 413, 422) and not message.startswith("<"):
        text += f" ({message})"
    err = UpstreamStatusError(
        text,
        upstream_status=status,
        provider=provider,
        retry_after=retry_after,
    )
    err.upstream_message = message or None
    return err


def _status_meaning(status: int, retry_after: float | None) -> str:
    if status in (400, 413, 422):
        return "the request was rejected as invalid"
    if status in (401, 403):
        return "the gateway's credentials were refused (the operator must check this provider's API key)"
    if status == 404:
        return "the model or endpoint is unknown to it"
    if status == 408:
        return "it timed out"
    if status == 429:
        wait = f"; retry after {max(1, math.ceil(retry_after))}s" if retry_after is not None else ""
        return f"it is rate limiting the gateway{wait}"
    if status in (503, 529):
        return "it is overloaded or unavailable"
    if status >= 500:
        return "it failed"
    return "an unexpected error status"


def upstream_error_type(raw: bytes) -> str | None:
    """The ``error.type`` of an upstream error body (Anthropic and OpenAI both send one)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    err = body.get("error") if isinstance(body, dict) else None
    kind = err.get("type") if isinstance(err, dict) else None
    return kind[:100] if isinstance(kind, str) else None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
