"""Shared parsing for the service endpoints: JSON bodies, key roles, time windows, key selection.

Time windows (``/v2/usage``, ``/v2/usage/detail``, ``/v2/logs``): ``period`` (a positive integer
followed by ``h`` or ``d``) xor ``start`` + ``end`` (ISO-8601; no offset means UTC); ``end`` not
before ``start``; at most 92 days. Anything else is a 400.

Key selection (api-key-usage.md): no ``key_prefix`` = the calling key; a regular key may name
only its own prefix (403 otherwise); a management key may name any key of its account (404 when
the prefix is not the account's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from modelgate.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from modelgate.httpkit.errors import validate_body
from modelgate.store.key_rows import get_key
from modelgate.store.keys import KeyIdentity

MAX_WINDOW = timedelta(days=92)
MAX_INT_PARAM = 2**31 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_INTEGER = re.compile(r"^-?[0-9]{1,12}$")
_PERIOD = re.compile(r"^([1-9][0-9]{0,5})([hd])$")
M = TypeVar("M", bound=BaseModel)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def parse_body(request: Request, model: type[M], *, required: bool = True) -> M:
    return validate_body(await request.body(), model, empty=None if required else b"{}")


def require_management(ident: KeyIdentity) -> None:
    if not ident.is_management:
        raise PermissionDeniedError(
            "This endpoint requires a management key. Create one on the Keys page (Management Keys tab).",
            code="management_key_required",
        )


def require_regular(ident: KeyIdentity) -> None:
    if ident.is_management:
        raise PermissionDeniedError(
            "Management keys can only manage API keys; use a regular API key for this endpoint.",
            code="management_key",
        )


def reject_unknown_params(request: Request, allowed: set[str]) -> None:
    for name in request.query_params:
        if name not in allowed:
            raise InvalidRequestError(f"Unknown query parameter {name!r}", param=name)


def single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidRequestError(f"{name} may be given only once", param=name)
    return values[0] if values else None


def int_param(request: Request, name: str, *, default: int, low: int, high: int = MAX_INT_PARAM) -> int:
    """An integer query parameter in ``[low, high]`` (plain decimal digits; by default at most
    2^31 - 1, which every database column and SQL OFFSET takes)."""
    raw = single(request, name)
    if raw is None:
        return default
    if _INTEGER.match(raw) is None:
        raise InvalidRequestError(f"{name} must be an integer", param=name)
    value = int(raw)
    if value < low or value > high:
        raise InvalidRequestError(f"{name} must be between {low} and {high}", param=name)
    return value


def parse_instant(raw: str, name: str) -> datetime:
    """ISO-8601; a value without an offset is UTC. Returned in UTC, between 1970 and 9000 (so that
    no time-zone shift or day arithmetic on it can leave the calendar)."""
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        dt = dt.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequestError(f"{name} is not an ISO-8601 timestamp: {raw[:64]!r}", param=name) from None
    if not EARLIEST <= dt < LATEST:
        raise InvalidRequestError(
            f"{name} must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}", param=name
        )
    return dt


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


def time_window(request: Request, *, now: datetime | None = None) -> Window:
    period = single(request, "period")
    start_raw, end_raw = single(request, "start"), single(request, "end")
    if period is not None and (start_raw is not None or end_raw is not None):
        raise InvalidRequestError("Provide either period or start and end, not both", param="period")
    if period is not None:
        m = _PERIOD.match(period)
        if m is None:
            raise InvalidRequestError(
                "period must be a positive integer followed by h or d, e.g. 24h or 7d", param="period"
            )
        n, unit = int(m.group(1)), m.group(2)
        span = timedelta(hours=n) if unit == "h" else timedelta(days=n)
        if span > MAX_WINDOW:
            raise InvalidRequestError("The window must not exceed 92 days", param="period")
        end = now or datetime.now(UTC)
        return Window(end - span, end)
    if start_raw is None and end_raw is None:
        raise InvalidRequestError(
            "Provide either period (e.g. 24h, 7d) or both start and end", param="period"
        )
    if start_raw is None or end_raw is None:
        missing = "start" if start_raw is None else "end"
        raise InvalidRequestError("start and end must be given together", param=missing)
    start, end = parse_instant(start_raw, "start"), parse_instant(end_raw, "end")
    if end < start:
        raise InvalidRequestError("end must not be earlier than start", param="end")
    if end - start > MAX_WINDOW:
        raise InvalidRequestError("The window must not exceed 92 days", param="end")
    return Window(start, end)


@dataclass(frozen=True, slots=True)
class KeyTarget:
    key_id: int
    requested_prefix: str | None


async def resolve_key(request: Request, ident: KeyIdentity, conn: Any) -> KeyTarget:
    prefix = single(request, "key_prefix")
    if prefix is None or prefix == "":
        return KeyTarget(ident.key_id, None)
    if prefix == ident.prefix:
        return KeyTarget(ident.key_id, prefix)
    if not ident.is_management:
        raise PermissionDeniedError(
            "A regular API key can only read its own usage; use a management key to read another key's.",
            param="key_prefix",
            code="key_prefix_forbidden",
        )
    rec = await get_key(
        conn, account_id=ident.account_id, prefix=prefix, include_deleted=True, project_id=ident.scope_project
    )
    if rec is None:
        raise NotFoundError(
            f"No API key with prefix {prefix!r} in this account", param="key_prefix", code="key_not_found"
        )
    return KeyTarget(rec.id, prefix)
