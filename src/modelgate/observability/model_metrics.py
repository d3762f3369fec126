"""Live latency figures per model (``GET /models/metrics``): ``ttft_ms``, ``tps`` and ``duration_ms``
as p50/p75/p90/p99 over a sliding window of successful requests.

Every successful request (any door) is observed once, by ``gateway/recorder.py``. The window is
``BUCKETS`` time buckets; each bucket holds, per model and metric, a log-bucketed histogram
(``observability/sketch.py``): memory per model is bounded by ``BUCKETS x 3 x MAX_BINS`` counters
whatever the traffic, and percentiles are within ~2 % of the exact ones.

With Redis (``MODELGATE_REDIS_URL``) instances share the figures: each adds its counts to one hash
per bucket (``<prefix>mm:<bucket>``, fields ``model\\tmetric\\tbin``, expiring after the window)
about once a second and before answering a read, and reads merge the window's hashes. If Redis
cannot be reached (refused, or no answer within ``redis_timeout`` seconds), an instance answers
from its own observations and keeps its counts for the next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from modelgate.observability import sketch

log = logging.getLogger("modelgate.metrics")

BUCKETS = 10
METRICS = ("ttft_ms", "tps", "duration_ms")
_DECIMALS = {"ttft_ms": 1, "tps": 2, "duration_ms": 1}

# bucket id -> (model, metric) -> bin -> count
Store = dict[int, dict[tuple[str, str], dict[int, int]]]


class ModelMetrics:
    def __init__(
        self,
        *,
        known_models: Iterable[str],
        window_seconds: int = 300,
        redis_url: str | None = None,
        prefix: str = "modelgate:",
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        redis_timeout: float = 0.5,
    ) -> None:
        if window_seconds < BUCKETS:
            raise ValueError(f"the metrics window must be at least {BUCKETS} seconds")
        self.window_seconds = window_seconds
        self.bucket_seconds = window_seconds / BUCKETS
        self._known = frozenset(known_models)
        self._clock = clock
        self._local: Store = {}  # this instance's observations in the window
        self._pending: Store = {}  # not yet added to Redis
        self._prefix = f"{prefix}mm:"
        self._flush_interval = flush_interval
        self._redis: Any = None
        self._flusher: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._timeout = redis_timeout
        if redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(
                redis_url,
                decode_responses=True,
                health_check_interval=30,
                socket_connect_timeout=redis_timeout,
            )

    # ---- recording (sync, cheap: called once per request) ----------------------------------------

    def know(self, models: Iterable[str]) -> None:
        """The models to keep figures for (the catalogue changed on the console)."""
        self._known = frozenset(models)

    def observe(self, model: str, *, seconds: float, ttft: float | None, output_tokens: int) -> None:
        """One successful request: ``seconds`` end to end, ``ttft`` to its first streamed event
        (streams only), ``output_tokens`` produced (0 for embeddings: no ``tps``)."""
        if model not in self._known or not math.isfinite(seconds) or seconds < 0:
            return
        duration = seconds * 1000
        if ttft is not None and 0 <= ttft <= seconds:
            ttft_ms: float | None = ttft * 1000
            generating = seconds - ttft
        else:
            ttft_ms, generating = None, seconds
        tps = output_tokens / generating if output_tokens > 0 and generating > 0 else None
        bucket = int(self._clock() // self.bucket_seconds)
        bin_of = sketch.bin_of
        for store in (self._local, self._pending) if self._redis is not None else (self._local,):
            per_bucket = store.get(bucket)
            if per_bucket is None:
                per_bucket = store[bucket] = {}
            # one histogram per (model, metric): inline, a dict lookup each, no per-metric loop
            bins = per_bucket.get((model, "duration_ms"))
            if bins is None:
                bins = per_bucket[(model, "duration_ms")] = {}
            index = bin_of(duration)
            bins[index] = bins.get(index, 0) + 1
            if ttft_ms is not None:
                bins = per_bucket.setdefault((model, "ttft_ms"), {})
                index = bin_of(ttft_ms)
                bins[index] = bins.get(index, 0) + 1
            if tps is not None:
                bins = per_bucket.get((model, "tps"))
                if bins is None:
                    bins = per_bucket[(model, "tps")] = {}
                index = bin_of(tps)
                bins[index] = bins.get(index, 0) + 1
        if len(self._local) > BUCKETS + 1:
            self._expire(self._local, bucket)

    def _bucket(self, now: float) -> int:
        return int(now // self.bucket_seconds)

    def _expire(self, store: Store, current: int) -> None:
        for old in [b for b in store if b <= current - BUCKETS]:
            del store[old]

    # ---- reading ---------------------------------------------------------------------------------

    async def snapshot(self, models: set[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
        """Per model id (only those in ``models`` when given): metric -> percentiles. A model
        with no successful request in the window is absent."""
        current = self._bucket(self._clock())
        merged = await self._window(current)
        out: dict[str, dict[str, dict[str, float]]] = {}
        for (model, metric), bins in merged.items():
            if models is not None and model not in models:
                continue
            figures = sketch.quantiles(bins)
            if figures:
                digits = _DECIMALS[metric]
                out.setdefault(model, {})[metric] = {k: round(v, digits) for k, v in figures.items()}
        return {m: out[m] for m in sorted(out) if "duration_ms" in out[m]}

    async def _window(self, current: int) -> dict[tuple[str, str], dict[int, int]]:
        if self._redis is not None:
            try:
                async with asyncio.timeout(self._timeout * 2):  # one flush, one read
                    await self.flush()
                    return await self._read_redis(current)
            except Exception as exc:
                log.warning(
                    "model metrics: Redis unavailable (%s); answering from this instance",
                    str(exc) or type(exc).__name__,
                )
        self._expire(self._local, current)
        return _merge_buckets(self._local.values())

    async def _read_redis(self, current: int) -> dict[tuple[str, str], dict[int, int]]:
        pipe = self._redis.pipeline(transaction=False)
        for bucket in range(current - BUCKETS + 1, current + 1):
            pipe.hgetall(f"{self._prefix}{bucket}")
        hashes: list[dict[str, str]] = await pipe.execute()
        stores: list[dict[tuple[str, str], dict[int, int]]] = []
        for fields in hashes:
            store: dict[tuple[str, str], dict[int, int]] = {}
            for field, count in fields.items():
                parsed = _parse_field(field, count)
                if parsed is not None and parsed[0] in self._known:
                    model, metric, index, n = parsed
                    bins = store.setdefault((model, metric), {})
                    bins[index] = bins.get(index, 0) + n
            stores.append(store)
        return _merge_buckets(stores)

    # ---- sharing through Redis -------------------------------------------------------------------

    async def flush(self) -> None:
        """Add this instance's pending counts to the shared hashes (no-op without Redis)."""
        if self._redis is None:
            return
        async with self._flush_lock:
            pending, self._pending = self._pending, {}
            if not pending:
                return
            self._expire(pending, self._bucket(self._clock()))
            ttl = math.ceil(self.window_seconds + 2 * self.bucket_seconds)
            pipe = self._redis.pipeline(transaction=False)
            for bucket, per_model in pending.items():
                key = f"{self._prefix}{bucket}"
                for (model, metric), bins in per_model.items():
                    for index, count in bins.items():
                        pipe.hincrby(key, f"{model}\t{metric}\t{index}", count)
                pipe.expire(key, ttl)
            try:
                await pipe.execute()
            except BaseException:
                _merge_into(self._pending, pending)  # kept for the next try (bounded: see _expire)
                raise

    def start(self) -> None:
        if self._redis is not None and self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                async with asyncio.timeout(self._timeout * 4):
                    await self.flush()
            except Exception as exc:
                if not failing:  # once per outage, not once a second
                    log.warning(
                        "model metrics: could not share counts through Redis (%s); kept for later",
                        str(exc) or type(exc).__name__,
                    )
                failing = True
            else:
                if failing:
                    log.warning("model metrics: sharing counts through Redis again")
                failing = False

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        if self._redis is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout * 4):
                    await self.flush()
            with contextlib.suppress(Exception):
                await self._redis.aclose()


def _parse_field(field: str, count: str) -> tuple[str, str, int, int] | None:
    """``model\\tmetric\\tbin`` -> parts; anything else in the hash is ignored."""
    parts = field.rsplit("\t", 2)
    if len(parts) != 3 or parts[1] not in METRICS:
        return None
    try:
        return parts[0], parts[1], int(parts[2]), int(count)
    except ValueError:
        return None


def _merge_buckets(
    stores: Iterable[Mapping[tuple[str, str], Mapping[int, int]]],
) -> dict[tuple[str, str], dict[int, int]]:
    merged: dict[tuple[str, str], dict[int, int]] = {}
    for store in stores:
        for key, bins in store.items():
            sketch.merge(merged.setdefault(key, {}), bins)
    return merged


def _merge_into(into: Store, other: Store) -> None:
    for bucket, per_model in other.items():
        target = into.setdefault(bucket, {})
        for key, bins in per_model.items():
            sketch.merge(target.setdefault(key, {}), bins)
