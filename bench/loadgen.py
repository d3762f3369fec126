"""A small async HTTP/1.1 load generator (uvloop + httptools), used where ``wrk`` is missing and for
what wrk cannot measure: streaming time-to-first-byte and inter-chunk gaps.

    python bench/loadgen.py http://127.0.0.1:8000/v1/chat/completions --body bench/body.json \
        --key KEY -c 32 -d 10 [--stream] [--json]

Prints (or with --json emits) requests/s, latency percentiles, and for --stream the TTFB and the
gaps between SSE frames. Every connection is kept alive; one request in flight per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from urllib.parse import urlsplit

import httptools


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[int] | None = None
        self.t0 = 0.0
        self.first_byte: float | None = None
        self.frame_times: list[float] = []
        self.status = 0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        now = time.perf_counter()
        if self.first_byte is None:
            self.first_byte = now
        n = body.count(b"data: ")
        self.frame_times.extend([now] * n)

    def on_message_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.done is not None and not self.done.done():
            self.done.set_result(self.status)

    async def request(self, raw: bytes) -> int:
        loop = asyncio.get_running_loop()
        self.done = loop.create_future()
        self.first_byte = None
        self.frame_times = []
        self.t0 = time.perf_counter()
        assert self.transport is not None
        self.transport.write(raw)
        return await self.done


def build_request(
    url: str, body: bytes, key: str | None, content_type: str = "application/json"
) -> tuple[str, int, bytes]:
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    head = [
        f"POST {u.path or '/'} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    if key:
        head.append(f"Authorization: Bearer {key}")
    return host, port, ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def run(
    url: str,
    body: bytes,
    key: str | None,
    conns: int,
    duration: float,
    requests: int | None,
    warmup: float,
    content_type: str = "application/json",
) -> dict[str, object]:
    host, port, raw = build_request(url, body, key, content_type)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    ttfb: list[float] = []
    gaps: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    counter = [0]
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration

    async def worker() -> None:
        nonlocal errors
        _, conn = await loop.create_connection(_Conn, host, port)
        try:
            while True:
                now = time.perf_counter()
                if requests is None and now >= stop_at:
                    return
                if requests is not None:
                    if counter[0] >= requests:
                        return
                    counter[0] += 1
                t0 = time.perf_counter()
                try:
                    status = await conn.request(raw)
                except ConnectionError:
                    errors += 1
                    return
                t1 = time.perf_counter()
                if t0 < measure_from and requests is None:
                    continue
                statuses[status] = statuses.get(status, 0) + 1
                if status != 200:
                    errors += 1
                latencies.append(t1 - t0)
                if conn.first_byte is not None:
                    ttfb.append(conn.first_byte - t0)
                ft = conn.frame_times
                gaps.extend(b - a for a, b in itertools.pairwise(ft))
        finally:
            if conn.transport is not None:
                conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    elapsed = (time.perf_counter() - measure_from) if requests is None else (time.perf_counter() - start)
    latencies.sort()

    def pct(xs: list[float], p: float) -> float:
        if not xs:
            return float("nan")
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000

    return {
        "requests": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "rps": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": pct(latencies, 50),
        "p90_ms": pct(latencies, 90),
        "p99_ms": pct(latencies, 99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "ttfb_p50_ms": pct(ttfb, 50),
        "ttfb_p99_ms": pct(ttfb, 99),
        "gap_p50_ms": pct(gaps, 50),
        "gap_mean_ms": statistics.fmean(gaps) * 1000 if gaps else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--body", required=True, help="file with the JSON body")
    ap.add_argument("--key")
    ap.add_argument("-c", "--connections", type=int, default=1)
    ap.add_argument("-d", "--duration", type=float, default=5.0)
    ap.add_argument("-n", "--requests", type=int, help="a fixed number of requests instead of a duration")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--content-type", default="application/json", help="e.g. multipart/form-data; boundary=x")
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with open(args.body, "rb") as f:
        body = f.read().strip()
    res = asyncio.run(
        run(
            args.url,
            body,
            args.key,
            args.connections,
            args.duration,
            args.requests,
            args.warmup,
            args.content_type,
        )
    )
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>12}: {v:.3f}" if isinstance(v, float) else f"{k:>12}: {v}")


if __name__ == "__main__":
    main()
