"""Prometheus metrics, written by hand (text format 0.0.4): a few dict increments per request.

Everything a chat request produces is recorded once, where the pipeline writes its usage log row
(``ChatGateway._log``), so failures after routing are counted as well as successes; requests
refused before that (bad key, bad body, unknown model, rate limit) are counted by the HTTP layer
in ``modelgate_http_requests_total``. Upstream errors (also those that led to a fallback) come
from the router's ``on_upstream_error`` hook.

Metrics are per process: run one worker per instance and scrape every instance (docs/deploy.md),
or scrape each worker through its own port.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable
from typing import Any

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)

Labels = tuple[str, ...]


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Labels, values: Labels, extra: str = "") -> str:
    parts = [f'{n}="{_esc(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Counter:
    __slots__ = ("help", "labels", "name", "values")

    def __init__(self, name: str, help: str, labels: Labels = ()) -> None:
        self.name, self.help, self.labels = name, help, labels
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), by: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + by

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for lv, v in self.values.items():
            yield f"{self.name}{_labels(self.labels, lv)} {v:g}"


class Gauge:
    """A gauge whose value is read from a callback at scrape time (or set directly)."""

    __slots__ = ("fn", "help", "kind", "labels", "name", "values")

    def __init__(
        self,
        name: str,
        help: str,
        labels: Labels = (),
        fn: Callable[[], dict[Labels, float]] | None = None,
        *,
        kind: str = "gauge",  # "counter": a monotonic count kept elsewhere, read at scrape time
    ) -> None:
        self.name, self.help, self.labels, self.fn, self.kind = name, help, labels, fn, kind
        self.values: dict[Labels, float] = {}

    def add(self, labels: Labels = (), by: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + by

    def render(self) -> Iterable[str]:
        values = self.fn() if self.fn is not None else self.values
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for lv, v in values.items():
            yield f"{self.name}{_labels(self.labels, lv)} {v:g}"


class Histogram:
    __slots__ = ("buckets", "help", "labels", "name", "series")

    def __init__(
        self, name: str, help: str, labels: Labels = (), buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> None:
        self.name, self.help, self.labels, self.buckets = name, help, labels, buckets
        # per label set: [count per bucket (non-cumulative, +Inf last)..., sum]
        self.series: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        s = self.series.get(labels)
        if s is None:
            s = self.series[labels] = [0.0] * (len(self.buckets) + 2)
        s[bisect.bisect_left(self.buckets, value)] += 1
        s[-1] += value

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for lv, s in self.series.items():
            acc = 0.0
            for i, b in enumerate(self.buckets):
                acc += s[i]
                le = _labels(self.labels, lv, f'le="{b:g}"')
                yield f"{self.name}_bucket{le} {acc:g}"
            acc += s[len(self.buckets)]
            le = _labels(self.labels, lv, 'le="+Inf"')
            yield f"{self.name}_bucket{le} {acc:g}"
            yield f"{self.name}_sum{_labels(self.labels, lv)} {s[-1]:.6f}"
            yield f"{self.name}_count{_labels(self.labels, lv)} {acc:g}"


class Metrics:
    """The gateway's metrics; one per app (built in ``app.build_app``), no module-level registry."""

    def __init__(self) -> None:
        self.started = time.time()
        self.http = Counter(
            "modelgate_http_requests_total", "Chat HTTP responses by path and status.", ("path", "status")
        )
        self.requests = Counter(
            "modelgate_requests_total",
            "Chat requests that reached routing, by outcome.",
            ("model", "provider", "status", "stream"),
        )
        self.latency = Histogram(
            "modelgate_request_duration_seconds",
            "Gateway time per chat request (to the last byte for streams).",
            ("model", "stream"),
        )
        self.tokens = Counter(
            "modelgate_tokens_total", "Tokens billed, by model and kind.", ("model", "kind")
        )
        self.credits = Counter(
            "modelgate_credits_total", "Credits charged, by model (2,000,000 = 1 USD).", ("model",)
        )
        self.overage = Counter(
            "modelgate_overage_credits_total",
            "Credits charged beyond their request's hold (the overdraft rule, docs/pricing.md), by model.",
            ("model",),
        )
        self.overage_requests = Counter(
            "modelgate_overage_requests_total", "Requests whose real cost exceeded their hold.", ("model",)
        )
        self.upstream_errors = Counter(
            "modelgate_upstream_errors_total",
            "Failed upstream attempts (retried, fallen back or final).",
            ("provider", "status"),
        )
        self.fallbacks = Counter(
            "modelgate_fallbacks_total", "Requests served by a route after the first.", ("model", "provider")
        )
        self.rate_limited = Counter(
            "modelgate_rate_limited_total", "Requests refused by rate limits.", ("limit",)
        )
        self.limiter_unavailable = Counter(
            "modelgate_rate_limiter_unavailable_total",
            "Rate-limited requests that found Redis unreachable, by the policy applied (open: admitted "
            "without per-key limits; closed: refused with 503).",
            ("policy",),
        )
        self.cache_lookups = Counter(
            "modelgate_cache_lookups_total",
            "Response-cache lookups (docs/cache.md), by mode asked, outcome and the kind of hit.",
            ("mode", "outcome", "kind"),
        )
        self.cache_lookup_seconds = Histogram(
            "modelgate_cache_lookup_seconds", "Time per response-cache lookup, by mode.", ("mode",)
        )
        self.cache_saved = Counter(
            "modelgate_cache_saved_credits_total",
            "Credits cache hits saved (what the answers cost, less the hits' price), by model.",
            ("model",),
        )
        self.log_rows_set_aside = Gauge(
            "modelgate_log_rows_set_aside_total",
            "Request-log rows the database refused (bad data) or could not take, set aside instead of "
            "retried.",
            kind="counter",
        )
        # Riding out a database outage (docs/deploy.md): room leased, spend journaled and not yet applied.
        self.leased_credits = Gauge(
            "modelgate_leased_credits", "Credits this instance holds as leases (reserved in the database)."
        )
        self.outage_journal_entries = Gauge(
            "modelgate_outage_journal_entries",
            "Requests served on leases while the database was unreachable, not yet applied to it.",
        )
        self.queue_depth = Gauge(
            "modelgate_local_queue_depth", "Requests waiting in a local provider's queue.", ("provider",)
        )
        self._collectors: list[Any] = [
            self.http,
            self.requests,
            self.latency,
            self.tokens,
            self.credits,
            self.overage,
            self.overage_requests,
            self.upstream_errors,
            self.fallbacks,
            self.rate_limited,
            self.limiter_unavailable,
            self.cache_lookups,
            self.cache_lookup_seconds,
            self.cache_saved,
            self.log_rows_set_aside,
            self.leased_credits,
            self.outage_journal_entries,
            self.queue_depth,
        ]

    def watch_queue_depth(self, providers: dict[str, Any]) -> None:
        """Providers with a queue of their own (``Provider.queue_depth`` not None: the local model)
        appear in the gauge."""

        def read() -> dict[Labels, float]:
            out: dict[Labels, float] = {}
            for name, p in providers.items():
                try:
                    depth = p.queue_depth()
                except Exception:  # a provider's gauge must never break a scrape
                    continue
                if depth is not None:
                    out[(name,)] = float(depth)
            return out

        self.queue_depth.fn = read

    # ---- hot path ------------------------------------------------------------------------------

    def request_done(
        self,
        *,
        model: str,
        provider: str | None,
        status: int,
        stream: bool,
        seconds: float,
        prompt_tokens: int,
        completion_tokens: int,
        credits: int,
        fallback: bool,
    ) -> None:
        s = "true" if stream else "false"
        p = provider or ""
        self.requests.inc((model, p, str(status), s))
        self.latency.observe((model, s), seconds)
        if prompt_tokens:
            self.tokens.inc((model, "prompt"), prompt_tokens)
        if completion_tokens:
            self.tokens.inc((model, "completion"), completion_tokens)
        if credits:
            self.credits.inc((model,), credits)
        if fallback:
            self.fallbacks.inc((model, p))

    def cache_lookup(self, mode: str, outcome: str, kind: str | None, seconds: float) -> None:
        self.cache_lookups.inc((mode, outcome, kind or ""))
        self.cache_lookup_seconds.observe((mode,), seconds)

    def upstream_error(self, provider: str, status: int | str) -> None:
        self.upstream_errors.inc((provider, str(status)))

    # ---- exposition ----------------------------------------------------------------------------

    def render(self) -> bytes:
        lines: list[str] = []
        for c in self._collectors:
            lines.extend(c.render())
        lines.append("# HELP modelgate_start_time_seconds Unix time the process started.")
        lines.append("# TYPE modelgate_start_time_seconds gauge")
        lines.append(f"modelgate_start_time_seconds {self.started:.3f}")
        return ("\n".join(lines) + "\n").encode()


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
