"""A log-bucketed histogram (the DDSketch idea): constant memory, mergeable, ~2 % relative error.

A positive value ``x`` falls in bin ``ceil(log(x) / log(GAMMA))``; the bin's representative value
is within ``(GAMMA - 1) / (GAMMA + 1)`` (≈ 2 %) of every value in it. Values are clamped to
``[MIN_VALUE, MAX_VALUE]``, so a histogram has at most ``MAX_BINS`` bins whatever the traffic:
that bound is the memory per model and metric. Two histograms merge by adding counts per bin,
which is what lets instances share them through Redis (``HINCRBY`` per bin).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

GAMMA = 1.04
_LOG_GAMMA = math.log(GAMMA)
MIN_VALUE = 1e-3
MAX_VALUE = 1e8
_MIN_BIN = math.ceil(math.log(MIN_VALUE) / _LOG_GAMMA)
_MAX_BIN = math.ceil(math.log(MAX_VALUE) / _LOG_GAMMA)
MAX_BINS = _MAX_BIN - _MIN_BIN + 1
QUANTILES = (("p50", 0.50), ("p75", 0.75), ("p90", 0.90), ("p99", 0.99))


def bin_of(value: float) -> int:
    """The bin of ``value`` (non-finite and non-positive values go to the lowest bin)."""
    if not value > MIN_VALUE:  # also NaN
        return _MIN_BIN
    if value >= MAX_VALUE:
        return _MAX_BIN
    return max(_MIN_BIN, min(_MAX_BIN, math.ceil(math.log(value) / _LOG_GAMMA)))


def value_of(index: int) -> float:
    """The representative value of a bin (the midpoint, in relative terms, of its range)."""
    return 2 * GAMMA**index / (GAMMA + 1)


def merge(into: dict[int, int], other: Mapping[int, int]) -> None:
    for index, count in other.items():
        into[index] = into.get(index, 0) + count


def quantiles(bins: Mapping[int, int], qs: Iterable[tuple[str, float]] = QUANTILES) -> dict[str, float]:
    """Nearest-rank quantiles: the smallest value with at least ``q`` of the samples at or below."""
    total = sum(bins.values())
    if total <= 0:
        return {}
    ordered = sorted((i, c) for i, c in bins.items() if c > 0)
    out: dict[str, float] = {}
    for name, q in qs:
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index, count in ordered:
            seen += count
            if seen >= rank:
                out[name] = value_of(index)
                break
    return out
