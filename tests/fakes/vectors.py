"""Deterministic fake embeddings shared by the fake upstreams: the same text always gives the same
vector (derived from its SHA-256), of any requested length, values in [-1, 1)."""

from __future__ import annotations

import hashlib
import struct


def fake_vector(item: str | list[int], dims: int) -> list[float]:
    seed = item.encode() if isinstance(item, str) else b",".join(str(t).encode() for t in item)
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        block = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        out.extend(v / 2**31 for v in struct.unpack("<8i", block))
        counter += 1
    return out[:dims]


def fake_tokens(item: str | list[int]) -> int:
    """The fakes' token count: words of a text (at least 1), or the length of a token-id array."""
    return len(item) if isinstance(item, list) else max(1, len(item.split()))
