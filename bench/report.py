"""The results table that bench/run.py prints and writes into docs/benchmarks.md."""

from __future__ import annotations


def fmt(v: object, nd: int = 2) -> str:
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "n/a" if v is None else str(v)


def table(
    mock: dict,
    mg: dict,
    base: dict | None,
    mg2: dict | None,
    bare: dict | None = None,
    *,
    conns: int,
    chunks: tuple[int, int],
    pace_ms: float,
) -> str:
    """The markdown table of docs/benchmarks.md: one column per measured server."""
    short_chunks, long_chunks = chunks
    cols = [mock] + ([bare] if bare else []) + [mg] + ([base] if base else [])
    lat_mock = mock["latency"]
    st_mock = mock["stream"]

    def added(r: dict, key: str, sub: str = "latency") -> str:
        if r is mock:
            return "—"
        return fmt(
            r[sub].get(key, float("nan"))
            - (lat_mock if sub == "latency" else st_mock).get(key, float("nan")),
            3,
        )

    rows = [
        (f"requests/s at {conns} connections", [fmt(c["throughput"]["rps"], 0) for c in cols]),
        ("non-2xx responses during that", [fmt(int(c["throughput"].get("errors", 0))) for c in cols]),
        (
            "x the bare proxy's requests/s",
            [fmt(c["throughput"]["rps"] / bare["throughput"]["rps"]) if bare else "n/a" for c in cols],
        ),
        (
            f"**gateway CPU per request (µs)** at {conns} connections",
            [fmt(c.get("cpu_us"), 0) for c in cols],
        ),
        (
            f"CPU per streamed request, {short_chunks} chunks (µs)",
            [fmt(c.get("stream_cpu_us"), 0) for c in cols],
        ),
        (
            f"**CPU per streamed chunk (µs)** ({short_chunks} vs {long_chunks}-chunk streams)",
            [fmt(c.get("chunk_cpu_us"), 1) for c in cols],
        ),
        (
            "latency p50 at 1 connection (ms)",
            [fmt(c["latency"].get("p50_ms", float("nan")), 3) for c in cols],
        ),
        (
            "latency p99 at 1 connection (ms)",
            [fmt(c["latency"].get("p99_ms", float("nan")), 3) for c in cols],
        ),
        ("**added** latency p50 (ms)", [added(c, "p50_ms") for c in cols]),
        ("**added** latency p99 (ms)", [added(c, "p99_ms") for c in cols]),
        ("stream TTFB p50 (ms)", [fmt(c["stream"]["ttfb_p50_ms"], 3) for c in cols]),
        ("**added** stream TTFB p50 (ms)", [added(c, "ttfb_p50_ms", "stream") for c in cols]),
        (
            f"inter-chunk gap mean (ms; upstream paces {pace_ms:g})",
            [fmt(c["stream"]["gap_mean_ms"], 3) for c in cols],
        ),
        ("RSS after warm-up (MB)", [fmt(c.get("rss_warm_mb"), 1) for c in cols]),
        ("RSS after the RSS-check requests (MB)", [fmt(c.get("rss_after_mb"), 1) for c in cols]),
        ("RSS-check requests sent", [fmt(c.get("rss_requests")) for c in cols]),
    ]
    head = "| figure | " + " | ".join(c["name"] for c in cols) + " |\n"
    head += "|---|" + "---|" * len(cols) + "\n"
    body = "".join(f"| {name} | " + " | ".join(vals) + " |\n" for name, vals in rows)
    if mg2:
        one = mg["throughput"]["rps"]
        two = mg2["throughput"]["rps"]
        body += f"\nScaling: 1 worker {one:,.0f} req/s → 2 workers {two:,.0f} req/s (x{two / one:.2f}).\n"
    return head + body
