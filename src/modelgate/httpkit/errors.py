"""The one mapping from errors to HTTP: the documented envelope, for every failure.

The body satisfies both audiences: the OpenAI SDKs read ``error.{message,type,param,code}`` and
raise their typed exceptions; AI/ML API clients read ``message``, ``statusCode``, ``path``,
``requestId`` and ``timestamp`` (aimlapi-docs/general-info.md). No stack trace ever leaves.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from modelgate.errors import GatewayError, InvalidRequestError, NotFoundError
from modelgate.store.outage import is_unreachable, unavailable

log = logging.getLogger("modelgate.api")
M = TypeVar("M", bound=BaseModel)

_GENERIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def new_request_id() -> str:
    """A 26-character id: 48 bits of milliseconds then 80 random bits, in base32hex (whose alphabet
    is in ASCII order). Ids sort by time, so the tables keyed by them (holds, ledger, request
    logs) grow at one end of their indexes instead of dirtying a random page per request.

    Ids are unique, not secret (nothing is authorised by knowing one), so the random bits come from
    the process's seeded generator (re-seeded from the OS in every worker) rather than a syscall."""
    value = ((time.time_ns() // 1_000_000) << 80 | random.getrandbits(80)) << 2  # 130 bits: 26 digits
    return "".join([_B32_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


# Base32hex (lower case) two digits at a time: the same text as ``base64.b32hexencode`` of the 16
# bytes, without its per-byte Python loop.
_B32_DIGITS = "0123456789abcdefghijklmnopqrstuv"
_B32_PAIRS = [a + b for a in _B32_DIGITS for b in _B32_DIGITS]
_PAIR_SHIFTS = range(120, -1, -10)


def envelope(
    *,
    status: int,
    message: str,
    error_type: str,
    param: str | None,
    code: str | None,
    path: str,
    request_id: str,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "error": {"message": message, "type": error_type, "param": param, "code": code},
        "message": message,
        "statusCode": status,
        "path": path,
        "requestId": request_id,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
    }


def gateway_error_body(exc: GatewayError, *, path: str, request_id: str) -> dict[str, Any]:
    return envelope(
        status=exc.status_code,
        message=exc.message,
        error_type=exc.error_type,
        param=exc.param,
        code=exc.code,
        path=path,
        request_id=request_id,
    )


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "inference_id", None)
    return rid if isinstance(rid, str) else new_request_id()


def error_response(
    exc: GatewayError, request: Request, extra_headers: dict[str, str] | None = None
) -> Response:
    rid = request_id_of(request)
    body = gateway_error_body(exc, path=request.url.path, request_id=rid)
    headers = {**exc.headers, **(extra_headers or {})}
    headers.setdefault("x-inference-id", rid)
    return Response(
        orjson.dumps(body), status_code=exc.status_code, media_type="application/json", headers=headers
    )


def _field_path(loc: tuple[Any, ...] | list[Any], data: Any) -> str:
    """Render a pydantic error location as ``messages[0].content``, walking the input so that
    union and discriminator tags (``user``, ``function-after[...]``, ``str``) are left out."""
    path = ""
    current = data
    parts = [p for p in loc if p != "body"]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(part, int) and isinstance(current, list):
            path += f"[{part}]"
            current = current[part] if part < len(current) else None
        elif isinstance(part, str) and isinstance(current, dict):
            if part in current:
                path += f".{part}" if path else part
                current = current[part]
            elif last or data is None:
                path += f".{part}" if path else part
        elif data is None and isinstance(part, str) and not (part[:1].isupper() or "[" in part):
            path += f".{part}" if path else part
    return path


def format_validation_errors(errors: list[Any], data: Any = None) -> tuple[str, str | None]:
    """'Body validation error: messages[0].role: ...' naming the first offending field."""
    parts: list[str] = []
    first_param: str | None = None
    for err in errors[:5]:
        path = _field_path(tuple(err.get("loc", ())), data)
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if first_param is None and path:
            first_param = path
        parts.append(f"{path}: {msg}" if path else msg)
    return "Body validation error: " + "; ".join(dict.fromkeys(parts)), first_param


def validate_body(raw: bytes, model: type[M], *, empty: bytes | None = None) -> M:
    """Validate a JSON request body into ``model``; any failure is a 400 naming the field.
    ``empty``: the body to assume when none was sent (None: an empty body is an error)."""
    if not raw.strip():
        if empty is None:
            raise InvalidRequestError("Body validation error: the request body is empty; send a JSON object")
        raw = empty
    if has_long_digit_run(raw):  # rare: only then is the body walked for huge integers
        _check_integer_range(raw)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0].get("type") == "json_invalid":
            raise InvalidRequestError("Body validation error: the request body is not valid JSON") from None
        if errors and errors[0].get("type") == "model_type" and not errors[0].get("loc"):
            raise InvalidRequestError(
                "Body validation error: the request body must be a JSON object"
            ) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        message, param = format_validation_errors(list(errors), data)
        raise InvalidRequestError(message, param=param) from None


def json_object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` parsed once by orjson, for a door that validates the parts of a large body itself
    (``doors/messages/body.py``), with the same 64-bit guard as ``validate_body`` (a 400). None
    when it is not a JSON object orjson reads (empty, invalid, another value): the door then calls
    ``validate_body``, whose 400 names what is wrong."""
    if has_long_digit_run(raw):
        _check_integer_range(raw)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if type(data) is dict else None


# 19 digits in a row: the shortest text of an integer beyond the 64-bit range (2^63 has 19).
# Every ASCII digit as "0", everything else as a space, then a substring search: one C pass, where
# a regex ``\d{19}`` tries a match at every byte (8 ms for a 400 KB agent's body on a busy core).
# First on every 9th byte only: a run of 19 digits covers two consecutive ones of them, so a body
# with no two digits 9 bytes apart at those places has no run (a ninth of the bytes to map); each
# such pair is a candidate, checked on the 28 bytes around it; past ``_CANDIDATES`` of them (a body
# full of numbers) the whole body is mapped.
_DIGIT_MASK = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_DIGIT_RUN = b"0" * 19
_STRIDE = 9
_CANDIDATES = 64


def has_long_digit_run(raw: bytes) -> bool:
    """Whether ``raw`` holds 19 ASCII digits in a row (what the regex ``rb"\\d{19}"`` finds)."""
    sampled = raw[::_STRIDE].translate(_DIGIT_MASK)
    at = sampled.find(b"00")
    for _ in range(_CANDIDATES):
        if at < 0:
            return False
        # a run through samples at and at + 1 lies within [9 at - 9, 9 at + 18]
        start = max(0, (at - 1) * _STRIDE)
        if _DIGIT_RUN in raw[start : (at + 2) * _STRIDE + 1].translate(_DIGIT_MASK):
            return True
        at = sampled.find(b"00", at + 1)
    return at >= 0 and _DIGIT_RUN in raw.translate(_DIGIT_MASK)


INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1


def _check_integer_range(raw: bytes) -> None:
    """400 for a JSON integer outside [-2^63, 2^64): no upstream protocol, JSON encoder or database
    column can carry it, so it is refused at the door rather than failing deep inside."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return  # not JSON (or absurdly deep): the validation that follows says so
    stack: list[Any] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, bool):
            continue
        if isinstance(node, int):
            if not INT64_MIN <= node <= UINT64_MAX:
                where = f"{path}: " if path else ""
                raise InvalidRequestError(
                    f"Body validation error: {where}integers must fit in 64 bits", param=path or None
                )
        elif isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway(request: Request, exc: GatewayError) -> Response:
        return error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        message, param = format_validation_errors(list(exc.errors()))
        return error_response(InvalidRequestError(message, param=param), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        if status == 404:
            err: GatewayError = NotFoundError(f"Cannot {request.method} {request.url.path}")
        else:
            err = GatewayError(str(exc.detail))
            err.status_code = status
            err.error_type = _GENERIC_TYPES.get(
                status, "internal_error" if status >= 500 else "invalid_request_error"
            )
        return error_response(err, request, extra_headers=dict(exc.headers or {}))

    @app.exception_handler(ClientDisconnect)
    async def _client_left(request: Request, exc: ClientDisconnect) -> Response:
        # The client left, or was cut for sending its body too slowly (httpserver.py): nobody
        # reads this answer, and it is not a server error.
        log.debug("client left during %s %s", request.method, request.url.path)
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        rid = request_id_of(request)
        if is_unreachable(exc):  # the database is down, cut or frozen: 503 (store/outage.py)
            log.warning(
                "database unreachable on %s %s (request %s): %r", request.method, request.url.path, rid, exc
            )
            return error_response(unavailable(), request)
        log.error(
            "unhandled error on %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc
        )
        return error_response(GatewayError(f"Internal server error (request id {rid})"), request)
