"""The response cache's lookups and the request traces' CPU, in process, in one run (issue 28).

    .venv/bin/python bench/cache_trace.py

Rows:
- exact hit: ``ResponseCache.find`` of a kept chat answer on the embedded SQLite table (what a hit
  puts where the upstream call was), p50/p99, beside a bare round trip to a local HTTP mock (aiohttp,
  keep-alive) in the same run;
- semantic lookup: ``find`` of a paraphrase (the last turn embedded by the local all-MiniLM-L6-v2,
  then the nearest of the candidates), p50/p99 (skipped without onnxruntime);
- traces: CPU per request of the tracer calls one request makes (start under a client traceparent,
  admission, hold, one attempt, settle, finish), disabled (the core holds None) and enabled with
  every span sampled, exported by a BatchSpanProcessor to an exporter that drops them.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

N = int(os.environ.get("CACHE_BENCH_N", "2000"))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(int(q * len(xs)), len(xs) - 1)]


async def mock_round_trip() -> list[float]:
    import aiohttp
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"choices": [{"message": {"content": "hi"}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    out = []
    async with aiohttp.ClientSession() as s:
        for _ in range(N // 4):
            t0 = time.perf_counter()
            async with s.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"m": 1}) as r:
                await r.read()
            out.append(time.perf_counter() - t0)
    await runner.cleanup()
    return out


async def cache_lookups(semantic: bool) -> tuple[list[float], list[float]]:
    from modelgate.cache.policy import CacheAsk
    from modelgate.cache.stage import CacheConfig, ResponseCache
    from modelgate.gateway.metered import Outcome
    from modelgate.providers.base import Completion, Usage
    from modelgate.store.db import Database
    from modelgate.store.response_cache import SQLiteCacheTable
    from modelgate.store.sqlite_writer import SQLiteWriter

    tmp = Path(tempfile.mkdtemp()) / "bench.db"
    db = Database(f"sqlite:///{tmp}")
    await db.upgrade()
    writer = SQLiteWriter(tmp)
    writer.start()
    table = SQLiteCacheTable(tmp, writer)
    embedder = None
    provider: Any = None
    if semantic:
        from modelgate.cache.embed import catalog_embedder
        from modelgate.catalog.loader import load_catalog_files
        from modelgate.catalog.registry import Catalog
        from modelgate.providers.base import ProviderContext
        from modelgate.providers.registry import ProviderTypeRegistry, build_providers

        providers_cfg, models = load_catalog_files(None)
        catalog = Catalog(
            providers={"local": providers_cfg["local"]},
            models=[m for m in models if m.id == "local/all-minilm-l6-v2"],
        )
        providers = build_providers(catalog, ProviderTypeRegistry.with_defaults(), ProviderContext())
        provider = providers["local"]
        embedder = catalog_embedder(catalog, providers, "local/all-minilm-l6-v2")
    cache = ResponseCache(table=table, embedder=embedder, config=CacheConfig(threshold=0.55))
    answer = Completion(
        choices=[{"index": 0, "message": {"role": "assistant", "content": "Paris."}}], usage=Usage(9, 2)
    )

    def body(text: str) -> bytes:
        turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
        return orjson.dumps({"model": "m", "messages": turns})

    def plan(text: str) -> Any:
        return cache.plan(
            CacheAsk(body(text), "messages"), door="chat", model="m", stream=False, n=1,
            account_id=1, mode="semantic" if semantic else "exact", ttl=None,
        )  # fmt: skip

    for i in range(200):  # other entries of the namespace
        lookup = plan(f"Question number {i} about topic {i * 7}?")
        await cache.store(lookup, Outcome(answer, answer.usage, "stop"), 100)  # type: ignore[arg-type]
    kept = plan("What is the capital of France?")
    await cache.store(kept, Outcome(answer, answer.usage, "stop"), 100)  # type: ignore[arg-type]
    await writer.flush()
    asked = "Which city is France's capital?" if semantic else "What is the capital of France?"
    times, cpu = [], []
    for _ in range(N // (20 if semantic else 1)):
        t0, c0 = time.perf_counter(), time.process_time()
        hit = await cache.find(plan(asked))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert hit is not None, "no hit"
    await writer.aclose()
    await table.aclose()
    await db.aclose()
    if provider is not None:
        await provider.aclose()
    return times, cpu


def trace_cpu(enabled: bool) -> float:
    """CPU seconds per request of the tracer's calls."""
    from modelgate.observability.tracing import RequestTracer

    tracer: Any = None
    if enabled:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class Drop(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        tracer = RequestTracer(provider, {"mock": "openai"})
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    c0 = time.process_time()
    for _ in range(N):
        trace = (
            tracer.start(door="chat", model="echo", inference_id="x", traceparent=parent) if tracer else None
        )
        if trace is not None:
            t = trace.now()
            trace.step("modelgate.admission", t)
            trace.step("modelgate.hold", trace.now(), **{"modelgate.hold.credits": 10})
            trace.attempt_begin("mock", "mock-model", 1)
            trace.attempt_end()
            settling = trace.settle(10)
            trace.finish(
                model="mock/echo", provider="mock", input_tokens=9, output_tokens=3, credits=10,
                finish="stop", cache=None, status=200, error=None,
            )  # fmt: skip
            settling.end()
    per = (time.process_time() - c0) / N
    if tracer is not None:
        tracer.shutdown()
    return per


async def main() -> None:
    rt = await mock_round_trip()
    exact, exact_cpu = await cache_lookups(semantic=False)
    print(f"| figure (n={N}) | p50 | p99 | target |")
    print("|---|---|---|---|")
    print(
        f"| bare mock round trip (ms) | {statistics.median(rt) * 1e3:.3f} | {pct(rt, 0.99) * 1e3:.3f} | — |"
    )
    print(
        f"| exact hit lookup (ms; CPU p50 {statistics.median(exact_cpu) * 1e3:.3f}) | "
        f"{statistics.median(exact) * 1e3:.3f} | {pct(exact, 0.99) * 1e3:.3f} | ≤ 1 ms p50 |"
    )
    try:
        import onnxruntime  # noqa: F401

        sem, _ = await cache_lookups(semantic=True)
        p50, p99 = statistics.median(sem) * 1e3, pct(sem, 0.99) * 1e3
        print(f"| semantic lookup, MiniLM on CPU (ms) | {p50:.3f} | {p99:.3f} | ≤ 10 ms p50 |")
    except ImportError:
        print("| semantic lookup | skipped: onnxruntime not installed | | |")
    off, on = trace_cpu(False), trace_cpu(True)
    print(f"| traces disabled, CPU per request (µs) | {off * 1e6:.2f} | | ≤ 5 µs |")
    print(f"| traces enabled + sampled, CPU per request (µs) | {on * 1e6:.1f} | | ≤ 150 µs |")


if __name__ == "__main__":
    asyncio.run(main())
