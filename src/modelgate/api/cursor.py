"""Opaque, HMAC-signed pagination cursors, accepted only in the exact form issued.

A cursor is ``base64url(payload).base64url(mac)`` without padding. The MAC covers the payload and
a ``scope`` string (the account and the query's filters), so a cursor cannot be forged, replayed
on another account, or reused with different filters; decoding and re-encoding it in any other
form (padding, standard alphabet, reordered JSON) fails the byte-exact comparison: 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

import orjson

from modelgate.errors import InvalidRequestError

_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,512}\.[A-Za-z0-9_-]{22}$")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str, scope: str) -> str:
    return _b64(hmac.new(secret, f"{payload}|{scope}".encode(), hashlib.sha256).digest()[:16])


def encode_cursor(secret: bytes, data: dict[str, Any], *, scope: str) -> str:
    payload = _b64(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    return f"{payload}.{_mac(secret, payload, scope)}"


def decode_cursor(secret: bytes, cursor: str, *, scope: str) -> dict[str, Any]:
    bad = InvalidRequestError(
        "cursor is malformed or was altered; pass pagination.next_cursor back exactly as issued",
        param="cursor",
        code="invalid_cursor",
    )
    if not _SHAPE.match(cursor):
        raise bad
    payload, mac = cursor.split(".")
    if not hmac.compare_digest(mac, _mac(secret, payload, scope)):
        raise bad
    try:
        data = orjson.loads(_unb64(payload))
    except (ValueError, orjson.JSONDecodeError):
        raise bad from None
    if not isinstance(data, dict) or encode_cursor(secret, data, scope=scope) != cursor:
        raise bad
    return data
