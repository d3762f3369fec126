"""HTTP plumbing shared by the network adapters: one aiohttp session per provider, timeouts,
server-sent-event parsing, and the translation of transport failures into ``UpstreamError``.

Timeouts (``ProviderConfig.timeouts``): ``connect`` for the TCP/TLS connect, ``first_byte`` for the
response head and for every gap between stream reads, ``total`` for the whole exchange.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import (
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)

_MAX_ERROR_BODY = 64 * 1024
_JSON = {"Content-Type": "application/json"}


@dataclass(slots=True)
class UpstreamErrorInfo:
    """What an adapter's ``status_hint`` may adjust about an upstream HTTP error."""

    status: int
    retry_after: float | None


# (status, parsed JSON body or None) -> adjusted info; lets an adapter read protocol-specific
# details (e.g. Gemini's ``API_KEY_INVALID`` arrives as a 400, its retry delay in ``RetryInfo``).
StatusHint = Callable[[int, Any], UpstreamErrorInfo | None]


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


class HTTPUpstream:
    """A pooled HTTP client bound to one provider's base URL, credentials and timeouts."""

    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        *,
        default_headers: Mapping[str, str],
        status_hint: StatusHint | None = None,
    ) -> None:
        if not config.base_url:
            raise ValueError(f"provider {name}: base_url is required")
        self.name = name
        self.base_url = config.base_url.rstrip("/")
        self.timeouts = config.timeouts
        self._headers = {**default_headers, **config.headers}
        self._session: aiohttp.ClientSession | None = None
        self._status_hint = status_hint

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                timeout=aiohttp.ClientTimeout(
                    total=self.timeouts.total,
                    sock_connect=self.timeouts.connect,
                    sock_read=self.timeouts.first_byte,
                ),
                auto_decompress=True,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def _send(self, path: str, body: Any, headers: Mapping[str, str] | None) -> aiohttp.ClientResponse:
        """POST JSON and wait for the response head (2xx, else ``UpstreamStatusError``).

        aiohttp's own timeouts bound each phase: ``sock_connect`` the connect, ``sock_read`` the
        wait for the head and every gap between reads, ``total`` the whole exchange.
        """
        hdrs = _JSON if headers is None else {**_JSON, **headers}
        try:
            resp = await self._get_session().post(
                f"{self.base_url}{path}", data=orjson.dumps(body), headers=hdrs
            )
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"upstream {self.name} sent no response within {self.timeouts.first_byte:g}s",
                provider=self.name,
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(
                f"cannot reach upstream {self.name}: {type(exc).__name__}", provider=self.name
            ) from exc
        if resp.status >= 400:
            try:
                await self._raise_for_status(resp)
            finally:
                resp.release()
        return resp

    @asynccontextmanager
    async def post(
        self, path: str, body: Any, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST JSON; yields the response once its head arrived with a 2xx status (streams)."""
        resp = await self._send(path, body, headers)
        try:
            with self._read_errors():
                yield resp
        finally:
            resp.release()

    async def post_json(self, path: str, body: Any, *, headers: Mapping[str, str] | None = None) -> Any:
        resp = await self._send(path, body, headers)
        try:
            with self._read_errors():
                raw = await resp.read()
        finally:
            resp.release()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"upstream {self.name} answered a body that is not JSON", provider=self.name
            ) from exc

    @contextmanager
    def _read_errors(self) -> Iterator[None]:
        try:
            yield
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"upstream {self.name} stalled for more than {self.timeouts.first_byte:g}s",
                provider=self.name,
            ) from exc
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise UpstreamConnectionError(
                f"upstream {self.name} closed the connection: {type(exc).__name__}", provider=self.name
            ) from exc

    async def _raise_for_status(self, resp: aiohttp.ClientResponse) -> None:
        try:
            raw = await resp.content.read(_MAX_ERROR_BODY)
        except (aiohttp.ClientError, TimeoutError):
            raw = b""
        message = upstream_error_message(raw) or resp.reason or "error"
        retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
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
        raise UpstreamStatusError(
            f"upstream {self.name} answered {resp.status}: {message}",
            upstream_status=status,
            provider=self.name,
            retry_after=retry_after,
        )


def upstream_error_message(raw: bytes) -> str | None:
    """The human message of an upstream error body (OpenAI, Gemini and Anthropic all nest it)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()
        return text[:300] or None
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message")
            if isinstance(msg, str):
                return msg[:1000]
        if isinstance(err, str):
            return err[:1000]
    return None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def iter_sse(resp: aiohttp.ClientResponse) -> AsyncIterator[SSEEvent]:
    """Parse a ``text/event-stream`` body into events as bytes arrive (never buffers the stream)."""
    event: str | None = None
    data: list[str] = []
    async for raw_line in resp.content:
        line = raw_line.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent(event, "\n".join(data))
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield SSEEvent(event, "\n".join(data))


def loads_event(name: str, data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(
            f"upstream {name} sent a stream event that is not JSON", provider=name
        ) from exc
