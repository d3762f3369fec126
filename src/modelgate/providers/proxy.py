"""Which egress proxy, if any, an upstream is reached through.

Per provider, ``options.proxy`` wins: a URL (``http://user:password@proxy.corp:3128``) or ``none``
(go direct whatever the environment says). Otherwise the environment as curl reads it:
``HTTPS_PROXY`` / ``https_proxy`` for an https upstream, ``HTTP_PROXY`` / ``http_proxy`` for an
http one, ``ALL_PROXY`` for both, except for hosts in ``NO_PROXY`` / ``no_proxy`` (comma-separated:
``*``, a host, a domain and its subdomains — ``example.com`` or ``.example.com`` —, an IP address or
a CIDR block, each optionally with ``:port``). Loopback upstreams (``localhost``, ``127.0.0.0/8``,
``::1``) never take an environment proxy (as Go's HTTP client), only an explicit ``options.proxy``.

The proxy is an ``http://`` proxy (an ``https://`` proxy URL is refused at start). An https
upstream is reached through a ``CONNECT`` tunnel, TLS end to end with the upstream; an http upstream
by absolute-form requests. Credentials in the URL are sent as ``Proxy-Authorization: Basic``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from modelgate.providers.httpconn import ConnectError


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None = None  # the Proxy-Authorization value

    def __repr__(self) -> str:  # never print the credentials
        return f"Proxy({self.host}:{self.port}, auth={'yes' if self.authorization else 'no'})"


def parse_proxy(url: str, where: str) -> Proxy:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{where}: the proxy must be an http:// URL (got scheme {parts.scheme!r})")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise ValueError(f"{where}: the proxy URL has a bad port") from exc
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(pair.encode()).decode()
    return Proxy(parts.hostname, port, auth)


def _env(env: Mapping[str, str], name: str) -> str:
    return env.get(name.lower()) or env.get(name.upper()) or ""


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` exempts ``host:port``."""
    host = host.lower().strip("[]")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = entry, None
        if entry.count(":") == 1 and not entry.startswith("["):
            name, _, port_text = entry.partition(":")
            entry_port = int(port_text) if port_text.isdigit() else None
        name = name.strip("[]")
        if entry_port is not None and entry_port != port:
            continue
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                return True
            continue
        except ValueError:
            pass
        domain = name.lstrip(".").lstrip("*.")
        if host == domain or host.endswith("." + domain):
            return True
    return False


def resolve_proxy(
    name: str, base_url: str, options: Mapping[str, Any], env: Mapping[str, str] | None
) -> Proxy | None:
    """The proxy for provider ``name`` reaching ``base_url`` (module docstring), or None."""
    where = f"provider {name}: options.proxy"
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    explicit = options.get("proxy")
    if explicit is not None:
        if explicit is False or str(explicit).lower() in ("none", "off", "direct", ""):
            return None
        return parse_proxy(str(explicit), where)
    if env is None or _loopback(host):
        return None
    scheme = parts.scheme
    url = _env(env, "https_proxy" if scheme == "https" else "http_proxy") or _env(env, "all_proxy")
    if not url:
        return None
    port = parts.port or (443 if scheme == "https" else 80)
    if bypassed(host, port, _env(env, "no_proxy")):
        return None
    return parse_proxy(url, f"provider {name}: the {'HTTPS' if scheme == 'https' else 'HTTP'}_PROXY setting")


class _TunnelHead(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT (a status line and headers, no body)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.head: asyncio.Future[bytes] = loop.create_future()
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if b"\r\n\r\n" in self._buffer and not self.head.done():
            head, _, rest = self._buffer.partition(b"\r\n\r\n")
            if rest:  # nothing may follow the answer before TLS starts
                self.head.set_exception(ConnectError("the proxy sent bytes after its CONNECT answer"))
            else:
                self.head.set_result(head)
        elif len(self._buffer) > 16384 and not self.head.done():
            self.head.set_exception(ConnectError("the proxy's CONNECT answer is too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectError("the proxy closed the connection during CONNECT"))


async def open_tunnel(
    loop: asyncio.AbstractEventLoop,
    proxy: Proxy,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    protocol: asyncio.Protocol,
) -> None:
    """Connect ``protocol`` to ``host:port`` through ``proxy``: a CONNECT tunnel, then TLS with the
    upstream inside it when ``ssl_context`` is given (the caller bounds the time)."""
    transport, head = await loop.create_connection(lambda: _TunnelHead(loop), proxy.host, proxy.port)
    try:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = await head.head
        status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or fields[1] != "200":
            what = "refused the gateway's proxy credentials" if fields[1:2] == ["407"] else "refused"
            raise ConnectError(f"the egress proxy {what}: {status_line[:200]}")
        if ssl_context is not None:
            tls = await loop.start_tls(transport, head, ssl_context, server_hostname=host)
            if tls is None:
                raise ConnectError("TLS through the proxy tunnel failed")
            transport = tls
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
    except BaseException:
        transport.close()
        raise
