"""Webhooks of spend alerts, signed as Standard Webhooks (https://www.standardwebhooks.com) sign
them: each delivery is a POST of a JSON body with the headers

- ``webhook-id``: the delivery's id (``msg_...``), the same on every retry: receivers deduplicate on it;
- ``webhook-timestamp``: seconds since the epoch, of this attempt;
- ``webhook-signature``: ``v1,`` + base64 of HMAC-SHA256 over ``{id}.{timestamp}.{body}``, keyed
  with the base64-decoded part of the webhook's secret ``whsec_<base64>`` (shown once when set).

URLs are http or https only; with ``webhook_refuse_private`` a host that is, or resolves to, a
non-public address (loopback, private, link-local, reserved: the gateway's own network) is refused,
when the webhook is set and again when it is sent. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
MAX_URL = 2000


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def new_delivery_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value of a body."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def verify(secret: str, *, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver checks (the docs' example, kept here so a test runs it)."""
    expected = sign(
        secret, msg_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"]), body=body
    )
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


def url_problem(url: str, *, refuse_private: bool) -> str | None:
    """Why ``url`` cannot be a webhook (None: it can), without resolving its host."""
    if len(url) > MAX_URL:
        return f"a webhook URL is at most {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the webhook URL is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "a webhook URL is an http:// or https:// URL with a host"
    if port == 0:
        return "the webhook URL's port is not valid"
    if refuse_private:
        host = parts.hostname
        if host == "localhost" or host.endswith(".localhost"):
            return "webhook URLs to this gateway's own or private network are refused here"
        try:
            if _private(host):
                return "webhook URLs to this gateway's own or private network are refused here"
        except ValueError:
            pass  # a name: checked again when sent, on the addresses it resolves to
    return None


async def resolves_private(url: str) -> bool:
    """True when the URL's host resolves to any non-public address (checked before each send)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False  # the send fails on its own and is retried
    return any(_private(str(info[4][0])) for info in infos)
