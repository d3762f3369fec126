"""Throughput of the embedded local model vs llama.cpp's own llama-server, same GGUF, same run.

    .venv/bin/python bench/local_throughput.py [--levels 1,4,8,16] [--tokens 200] [--repeat 2]
                                               [--no-server] [--structured-levels 1,4]
                                               [--structured-only]

For each concurrency level it runs that many simultaneous streams (temperature 0, up to --tokens
tokens each, distinct prompts) through ``LocalProvider.stream`` and through ``llama-server``'s
``/v1/chat/completions`` (built by ``bench/local_build_llama_server.sh``), alternating sides level
by level so both see the same machine load (best of --repeat runs per side: noise only slows), and
prints aggregate tokens/s, per-stream tokens/s and time to first token (p50 / max). It then
reports how often a batched greedy answer (highest level) equals the same prompt answered alone,
for the engine and for llama-server, whether the engine alone equals llama-server alone, and the
engine's Python overhead (time in whole steps minus time inside ``llama_decode``).

Structured output: the same prompts (describe a topic as JSON) answered as plain text, with
``response_format: json_object`` and with a ``json_schema``, alternating modes, best of --repeat;
it prints each mode's tokens/s and its ratio to plain text measured in the same run (target: JSON
modes at >= 0.7x plain), and whether every constrained answer parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from modelgate.catalog.models import ModelSpec, ProviderConfig  # noqa: E402
from modelgate.providers.base import ProviderCall, ProviderContext  # noqa: E402
from modelgate.providers.local import LocalProvider, create  # noqa: E402
from modelgate.providers.local.runtime import default_threads  # noqa: E402
from modelgate.wire.chat import ChatRequest  # noqa: E402

TOPICS = [
    "the ocean", "volcanoes", "the history of Rome", "honey bees", "the moon landing", "jazz music",
    "rainforests", "the printing press", "black holes", "ancient Egypt", "electric cars", "chess",
    "the water cycle", "mountain climbing", "coffee", "the internet", "dinosaurs", "glaciers",
]  # fmt: skip
SPEC = ModelSpec.model_validate(
    {
        "id": "local/smollm2",
        "info": {"name": "SmolLM2", "developer": "HF"},
        "pricing": {"input_usd_per_mtok": 0, "output_usd_per_mtok": 0},
        "routes": [{"provider": "local", "model": "smollm2"}],
    }
)


def prompt(i: int) -> str:
    return f"Write a long, detailed essay about {TOPICS[i % len(TOPICS)]}."


JSON_PROMPT = "Describe {} as a JSON object with a name, a one-sentence summary, facts and related topics."
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "summary": {"type": "string"},
        "facts": {"type": "array", "items": {"type": "string"}},
        "related": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "why": {"type": "string"}},
                "required": ["name", "why"],
            },
        },
    },
    "required": ["name", "summary", "facts", "related"],
}
FORMATS: dict[str, dict[str, Any] | None] = {
    "text": None,
    "json_object": {"type": "json_object"},
    "json_schema": {"type": "json_schema", "json_schema": {"name": "topic", "schema": SCHEMA}},
}


@dataclass
class Run:
    text: str
    tokens: int
    ttft: float
    seconds: float
    finish: str | None = None


@dataclass
class Level:
    runs: list[Run]
    wall: float

    @property
    def tok_s(self) -> float:
        return sum(r.tokens for r in self.runs) / self.wall

    @property
    def per_stream(self) -> float:
        return statistics.mean(r.tokens / r.seconds for r in self.runs)

    def ttft(self) -> tuple[float, float]:
        values = [r.ttft for r in self.runs]
        return statistics.median(values), max(values)


async def engine_one(provider: LocalProvider, i: int, tokens: int, fmt: str | None = None) -> Run:
    """One greedy stream: the essay prompt, or (``fmt`` given) the JSON prompt in that format."""
    body: dict[str, Any] = {"model": "local/smollm2", "temperature": 0}
    if fmt is None:
        body["messages"] = [{"role": "user", "content": prompt(i)}]
    else:
        body["messages"] = [{"role": "user", "content": JSON_PROMPT.format(TOPICS[i % len(TOPICS)])}]
        if FORMATS[fmt] is not None:
            body["response_format"] = FORMATS[fmt]
    request = ChatRequest.model_validate(body)
    call = ProviderCall(request=request, upstream_model="smollm2", max_tokens=tokens, model=SPEC)
    start = time.perf_counter()
    ttft = 0.0
    parts: list[str] = []
    usage = None
    finish = None
    async for chunk in provider.stream(call):
        for choice in chunk.choices:
            finish = choice.get("finish_reason") or finish
            content = choice["delta"].get("content")
            if content:
                if not ttft:
                    ttft = time.perf_counter() - start
                parts.append(content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert usage is not None
    return Run("".join(parts), usage.completion_tokens, ttft, time.perf_counter() - start, finish)


async def server_one(session: aiohttp.ClientSession, url: str, i: int, tokens: int) -> Run:
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": prompt(i)}],
        "temperature": 0,
        "max_tokens": tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        "cache_prompt": False,
    }
    start = time.perf_counter()
    ttft = 0.0
    parts: list[str] = []
    completion = 0
    async with session.post(f"{url}/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        async for raw in resp.content:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            obj = json.loads(line[5:])
            for choice in obj.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    if not ttft:
                        ttft = time.perf_counter() - start
                    parts.append(content)
            if obj.get("usage"):
                completion = int(obj["usage"]["completion_tokens"])
    return Run("".join(parts), completion, ttft, time.perf_counter() - start)


def compare(label: str, left: list[Run], right: list[Run]) -> str:
    same = sum(a.text == b.text for a, b in zip(left, right, strict=True))
    prefix = statistics.mean(common_prefix(a.text, b.text) for a, b in zip(left, right, strict=True))
    return f"{label:<36} {same:>2}/{len(left)}  {prefix:6.0f} chars"


def common_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


async def level(runner: Any, n: int, offset: int) -> Level:
    start = time.perf_counter()
    runs = await asyncio.gather(*(runner(offset + i) for i in range(n)))
    return Level(list(runs), time.perf_counter() - start)


def parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def structured(provider: LocalProvider, levels: list[int], tokens: int, repeat: int) -> None:
    """Plain text vs JSON modes on the same prompts, alternating, each mode's best run kept."""
    print(f"\nstructured output: the same JSON prompts, greedy, up to {tokens} tokens, best of {repeat}")
    print("(outside decode: engine time per token spent outside llama_decode, grammar checks included;")
    print(" parsed: JSON answers that ended by themselves and parse / answers that ended by themselves)")
    header = f"{'streams':>7} | " + " | ".join(f"{fmt + ' tok/s':>17}" for fmt in FORMATS)
    header += " | ratio object/schema | outside decode ms/token | tokens/answer | parsed"
    print(header)
    print("-" * len(header))
    for n in levels:
        best: dict[str, Level] = {}
        outside: dict[str, float] = {}
        for _ in range(repeat):
            for fmt in FORMATS:
                stats = provider.engine.stats  # a snapshot, sent by the worker process each step
                step0, dec0, gen0 = stats.step_seconds, stats.decode_seconds, stats.generated_tokens
                run = await level(lambda i, f=fmt: engine_one(provider, i, tokens, f), n, 0)
                stats = provider.engine.stats
                spent = (stats.step_seconds - step0) - (stats.decode_seconds - dec0)
                per_token = spent / max(1, stats.generated_tokens - gen0)
                outside[fmt] = min(outside.get(fmt, per_token), per_token)
                if fmt not in best or run.tok_s > best[fmt].tok_s:
                    best[fmt] = run
        plain = best["text"].tok_s
        lengths = "/".join(f"{statistics.mean(r.tokens for r in best[f].runs):.0f}" for f in FORMATS)
        ended = [r for f in ("json_object", "json_schema") for r in best[f].runs if r.finish == "stop"]
        ok = sum(parses(r.text) for r in ended)
        print(
            f"{n:>7} | "
            + " | ".join(f"{best[f].tok_s:>17.1f}" for f in FORMATS)
            + f" | {best['json_object'].tok_s / plain:>9.2f} / {best['json_schema'].tok_s / plain:<7.2f}"
            + " | "
            + f"{' / '.join(f'{1e3 * outside[f]:.2f}' for f in FORMATS):>23}"
            + f" | {lengths:>13} | {ok}/{len(ended)}",
            flush=True,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_server(binary: str, gguf: str, port: int, n_ctx: int, parallel: int, threads: int) -> Any:
    cmd = [
        binary, "-m", gguf, "--port", str(port), "--host", "127.0.0.1", "-c", str(n_ctx),
        "-np", str(parallel), "--kv-unified", "-t", str(threads), "-tb", str(threads),
        "-b", "512", "-ub", "512", "--no-webui",
    ]  # fmt: skip
    log = open(ROOT / "bench/local_llama_server/server.log", "wb")  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(url: str, proc: Any) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("llama-server exited; see its log")
            try:
                async with session.get(f"{url}/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("llama-server did not become ready")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,4,8,16")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--server-bin", default=str(ROOT / "bench/local_llama_server/build/bin/llama-server"))
    ap.add_argument("--no-server", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="runs per level and side; the best is kept")
    ap.add_argument("--structured-levels", default="1,4", help="streams for the JSON-mode comparison")
    ap.add_argument("--structured-only", action="store_true", help="only the JSON-mode comparison")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    structured_levels = [int(x) for x in args.structured_levels.split(",") if x]
    parallel = max(levels + structured_levels)
    n_ctx = 8192

    provider = create(
        "local",
        ProviderConfig(
            type="local", options={"parallel": parallel, "n_ctx": n_ctx, "n_threads": args.threads}
        ),
        ProviderContext(),
    )
    await provider.start()
    gguf = str(provider.model_path)
    await engine_one(provider, 0, 16)  # warm-up
    if args.structured_only:
        try:
            await structured(provider, structured_levels, args.tokens, args.repeat)
        finally:
            await provider.aclose()
        return

    proc = None
    session = None
    url = ""
    use_server = not args.no_server and await asyncio.to_thread(Path(args.server_bin).is_file)
    if use_server:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = await asyncio.to_thread(
            launch_server, args.server_bin, gguf, port, n_ctx, parallel, args.threads
        )
        await wait_ready(url, proc)
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=600),
            connector=aiohttp.TCPConnector(force_close=True),  # llama-server may drop idle keep-alives
        )
        await server_one(session, url, 0, 16)  # warm-up
    elif not args.no_server:
        print(f"(no llama-server at {args.server_bin}: run bench/local_build_llama_server.sh)")

    results: dict[int, tuple[Level, Level | None]] = {}
    try:
        for n in levels:
            mine: Level | None = None
            theirs: Level | None = None
            overhead = 0.0
            for _ in range(args.repeat):  # alternate sides; keep each side's best (noise only slows)
                stats = provider.engine.stats  # a snapshot, sent by the worker process each step
                step0, dec0 = stats.step_seconds, stats.decode_seconds
                run = await level(lambda i: engine_one(provider, i, args.tokens), n, 0)
                stats = provider.engine.stats
                if mine is None or run.tok_s > mine.tok_s:
                    mine = run
                    overhead = (stats.step_seconds - step0) - (stats.decode_seconds - dec0)
                if session is not None:
                    other = await level(lambda i, s=session: server_one(s, url, i, args.tokens), n, 0)
                    theirs = other if theirs is None or other.tok_s > theirs.tok_s else theirs
            assert mine is not None
            results[n] = (mine, theirs)
            print(
                f"  {n:>2} streams: engine {mine.tok_s:7.1f} tok/s"
                + (f", llama-server {theirs.tok_s:7.1f} tok/s" if theirs else "")
                + f"  (engine Python overhead {100 * overhead / mine.wall:.1f}% of wall)",
                flush=True,
            )
        top = max(levels)
        alone = [await engine_one(provider, i, args.tokens) for i in range(top)]
        server_alone = (
            [await server_one(session, url, i, args.tokens) for i in range(top)]
            if session is not None
            else []
        )
    finally:
        if session is not None:
            await session.close()
        if proc is not None:
            proc.terminate()
            proc.wait()
        await provider.aclose()

    print()
    header = f"{'streams':>7} | {'engine tok/s':>12} | {'server tok/s':>12} | {'ratio':>6} | "
    header += f"{'per-stream e/s':>14} | {'TTFT p50 e/s (ms)':>17} | {'TTFT max e/s (ms)':>17}"
    print(header)
    print("-" * len(header))
    for n, (mine, theirs) in results.items():
        e50, emax = mine.ttft()
        if theirs is not None:
            s50, smax = theirs.ttft()
            print(
                f"{n:>7} | {mine.tok_s:>12.1f} | {theirs.tok_s:>12.1f} | {mine.tok_s / theirs.tok_s:>6.2f} | "
                f"{mine.per_stream:>6.1f}/{theirs.per_stream:<7.1f} | {e50 * 1e3:>7.0f}/{s50 * 1e3:<9.0f} | "
                f"{emax * 1e3:>7.0f}/{smax * 1e3:<9.0f}"
            )
        else:
            print(
                f"{n:>7} | {mine.tok_s:>12.1f} | {'-':>12} | {'-':>6} | {mine.per_stream:>6.1f}/{'-':<7} | "
                f"{e50 * 1e3:>7.0f}/{'-':<9} | {emax * 1e3:>7.0f}/{'-':<9}"
            )
    print(f"\ngreedy answers, {top} prompts: identical / mean characters before the first difference")
    print("  " + compare("engine batched vs engine alone", results[top][0].runs, alone))
    if server_alone:
        server_batched = results[top][1].runs  # type: ignore[union-attr]
        print("  " + compare("llama-server batched vs alone", server_batched, server_alone))
        print("  " + compare("engine alone vs llama-server alone", alone, server_alone))
    lengths = [r.tokens for r in results[top][0].runs]
    print(f"completion tokens per answer at {top} streams: min {min(lengths)}, max {max(lengths)}")
    if structured_levels:
        provider = create(
            "local",
            ProviderConfig(
                type="local", options={"parallel": parallel, "n_ctx": n_ctx, "n_threads": args.threads}
            ),
            ProviderContext(),
        )
        await provider.start()
        try:
            await structured(provider, structured_levels, args.tokens, args.repeat)
        finally:
            await provider.aclose()


if __name__ == "__main__":
    asyncio.run(main())
