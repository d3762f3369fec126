"""What crosses the pipe between the gateway process and a local model's worker process.

Messages are tuples pickled by ``multiprocessing.connection.Connection`` over a socket pair that
only the two processes hold (never anything a client sent as pickle: a client's values travel as
plain strings, numbers and lists inside these tuples).

    gateway → worker                         worker → gateway
    ("config", kind, options, log_level)     ("ready", pid)
    ("call", rid, payload)                   ("load_error", error)        then it exits
    ("cancel", rid)                          ("out", [(rid, payload, final), ...], stats | None)
    ("stop",)

``final`` marks a call's last message. Errors travel as ``encode_error``'s plain tuple and become
the same ``GatewayError`` class on the other side (``decode_error``).
"""

from __future__ import annotations

from typing import Any

from modelgate import errors
from modelgate.errors import GatewayError, RateLimitError, UpstreamError

ErrorTuple = tuple[str, str, str | None, str | None, float | None]

_KNOWN: dict[str, type[GatewayError]] = {
    cls.__name__: cls
    for cls in (
        errors.InvalidRequestError,
        errors.RateLimitError,
        errors.ProviderNotConfiguredError,
        errors.UpstreamError,
    )
}


def encode_error(exc: GatewayError) -> ErrorTuple:
    name = next((c.__name__ for c in type(exc).__mro__ if c.__name__ in _KNOWN), "UpstreamError")
    retry_after = getattr(exc, "retry_after", None)
    return (name, exc.message, exc.param, exc.code, float(retry_after) if retry_after is not None else None)


def decode_error(data: Any, *, provider: str) -> GatewayError:
    name, message, param, code, retry_after = data
    cls = _KNOWN.get(str(name), UpstreamError)
    if cls is RateLimitError:
        return RateLimitError(str(message), retry_after=float(retry_after or 1.0), param=param, code=code)
    if issubclass(cls, UpstreamError):
        return cls(str(message), provider=provider, param=param, code=code)
    return cls(str(message), param=param, code=code)
