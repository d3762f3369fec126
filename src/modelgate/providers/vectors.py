"""Embedding vectors from an upstream, validated at the adapter boundary.

An upstream's answer is untrusted: it must hold exactly one vector per input, each of the expected
length, every value a finite number, and a token count within what the request could have cost.
Anything else is an ``UpstreamProtocolError`` (a 502 to the client, and a retryable route failure),
never a malformed response passed on. Large bodies are parsed and checked off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from array import array
from typing import Any

import orjson

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.base import EmbedCall
from modelgate.providers.checks import token_count

# Bodies above this size are parsed and validated in a worker thread (a 2,048 x 1,536 float answer
# is ~40 MB of JSON: tens of milliseconds the event loop must not be held for).
OFFLOAD_BYTES = 256 * 1024


def expected_dimensions(call: EmbedCall) -> int:
    """The vector length the answer must have: the one asked for, else the model's native one."""
    if call.dimensions is not None:
        return call.dimensions
    spec = call.model.embedding
    if spec is None:  # the door admits only embedding models; a defensive, explicit failure
        raise UpstreamProtocolError(f"model {call.model.id} is not an embedding model")
    return spec.dimensions


def token_bound(call: EmbedCall) -> int:
    """The most tokens an upstream may report for ``call`` (its inputs at the model's limit)."""
    spec = call.model.embedding
    per_input = spec.max_input_tokens if spec is not None else 0
    return len(call.inputs) * (per_input + 16)  # slack for special tokens an upstream may count


def vector(provider: str, raw: Any, *, dims: int) -> list[float]:
    """One vector: a JSON array of numbers, or base64 of little-endian float32 (OpenAI's encoding)."""
    if isinstance(raw, str):
        try:
            packed = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UpstreamProtocolError(
                f"upstream {provider} sent an embedding that is not base64", provider=provider
            ) from exc
        if len(packed) % 4:
            raise UpstreamProtocolError(
                f"upstream {provider} sent a base64 embedding of {len(packed)} bytes", provider=provider
            )
        values = array("f")
        values.frombytes(packed)
        values_d = array("d", values)
    elif isinstance(raw, list):
        try:
            values_d = array("d", raw)
        except (TypeError, OverflowError) as exc:
            raise UpstreamProtocolError(
                f"upstream {provider} sent an embedding value that is not a number", provider=provider
            ) from exc
    else:
        raise UpstreamProtocolError(f"upstream {provider} sent a malformed embedding", provider=provider)
    if len(values_d) != dims:
        raise UpstreamProtocolError(
            f"upstream {provider} sent a vector of {len(values_d)} values; {dims} were expected",
            provider=provider,
        )
    # A sum is finite only if every term is (NaN and infinities propagate); overflow counts as bad.
    try:
        finite = math.isfinite(math.fsum(values_d))
    except OverflowError:
        finite = False
    if not finite:
        raise UpstreamProtocolError(
            f"upstream {provider} sent an embedding with a non-finite value", provider=provider
        )
    return values_d.tolist()


def prompt_tokens(provider: str, raw: Any, *, bound: int) -> int:
    """A reported token count: absent is 0 (the door then charges its own estimate); otherwise a
    token count as ``providers/checks.py`` takes them, and no more than ``bound``."""
    value = token_count(raw, provider=provider, field="prompt_tokens")
    if value > bound:
        raise UpstreamProtocolError(
            f"upstream {provider} reported an impossible token count ({value} for inputs of at most {bound})",
            provider=provider,
        )
    return value


def loads(provider: str, raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(
            f"upstream {provider} answered a body that is not JSON", provider=provider
        ) from exc


async def off_loop(size: int, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a worker thread when the body is large, inline when small."""
    if size > OFFLOAD_BYTES:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)
