"""Throughput and quality of the embedded embedding model (all-MiniLM-L6-v2, int8 ONNX), in-process.

    .venv/bin/python bench/local_embeddings.py [--seconds 3] [--threads N] [--batch 32]

Embeddings/s through ``LocalProvider.embed``:

* one request of B inputs, for B in 1, 8, 32, 128 (the inputs of a request are computed together);
* 32 concurrent requests of one input each (requests arriving together are computed together),
  beside the same 32 inputs sent one request after the other (the one-at-a-time baseline);
* short (~14 tokens) and long (~70 tokens) inputs.

Then the quality check of ``tests/providers/test_local_embed.py`` (every sentence's paraphrase must
rank first among 25 sentences, distractors sharing words included) with its smallest margin.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from modelgate.catalog.models import ModelSpec, ProviderConfig  # noqa: E402
from modelgate.providers.base import EmbedCall, ProviderContext  # noqa: E402
from modelgate.providers.local import LocalProvider, create  # noqa: E402
from modelgate.providers.local.runtime import default_threads  # noqa: E402
from tests.providers.test_local_embed import DISTRACTORS, PARAPHRASES, SPEC  # noqa: E402

SHORT = "Sentence {} is about a fairly ordinary topic that people discuss."
LONG = " ".join(
    [
        "Paragraph {} describes how the committee reviewed the annual budget, compared the spending of",
        "each department with the plan, discussed why travel and equipment costs had grown faster than",
        "expected, and agreed on a short list of measures to bring the next year's figures back in line,",
        "including shared purchasing, fewer external consultants and a review of every recurring contract.",
    ]
)


def call(inputs: list[str], spec: ModelSpec = SPEC) -> EmbedCall:
    return EmbedCall(inputs=inputs, upstream_model="all-minilm-l6-v2", model=spec)


async def rate(provider: LocalProvider, make: Any, per_round: int, seconds: float) -> float:
    """Inputs embedded per second, repeating ``make()`` (one round of ``per_round`` inputs)."""
    await make()  # warm-up (shapes, caches)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        await make()
        done += per_round
    return done / (time.perf_counter() - start)


async def measure(provider: LocalProvider, name: str, texts: list[str], seconds: float) -> None:
    tokens = (await provider.embed(call(texts[:1]))).prompt_tokens
    label = f"{name} ({tokens} tok)"
    for b in (1, 8, 32, 128):
        r = await rate(provider, lambda b=b: provider.embed(call(texts[:b])), b, seconds)
        print(f"{label:>14} | {f'one request of {b} input(s)':<34} | {r:>12.1f}", flush=True)
    together = await rate(
        provider, lambda: asyncio.gather(*(provider.embed(call([t])) for t in texts[:32])), 32, seconds
    )

    async def one_by_one() -> None:
        for t in texts[:32]:
            await provider.embed(call([t]))

    sequential = await rate(provider, one_by_one, 32, seconds)
    print(f"{label:>14} | {'32 concurrent requests of 1 input':<34} | {together:>12.1f}")
    print(f"{label:>14} | {'32 requests of 1, one at a time':<34} | {sequential:>12.1f}", flush=True)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--batch", type=int, default=32, help="most inputs per ONNX run (embed_batch)")
    args = ap.parse_args()
    provider = create(
        "local",
        ProviderConfig(type="local", options={"embed_threads": args.threads, "embed_batch": args.batch}),
        ProviderContext(),
    )
    try:
        print(f"all-MiniLM-L6-v2 int8 (onnxruntime), {args.threads} thread(s), embed_batch {args.batch}")
        print(f"{'inputs':>14} | {'requests':<34} | {'embeddings/s':>12}")
        print("-" * 68)
        for name, template in (("short", SHORT), ("long", LONG)):
            await measure(provider, name, [template.format(i) for i in range(128)], args.seconds)
        texts = [t for pair in PARAPHRASES for t in pair] + DISTRACTORS
        vectors = (await provider.embed(call(texts))).vectors
        hits, margin = 0, 1.0
        for i in range(2 * len(PARAPHRASES)):
            sims = [sum(a * b for a, b in zip(vectors[i], v, strict=True)) for v in vectors]
            partner = sims[i ^ 1]
            best_other = max(s for j, s in enumerate(sims) if j not in (i, i ^ 1))
            hits += partner > best_other
            margin = min(margin, partner - best_other)
        print(
            f"\nquality: the paraphrase ranks first for {hits}/{2 * len(PARAPHRASES)} sentences"
            f" among {len(texts)} (smallest margin {margin:.3f})"
        )
    finally:
        await provider.aclose()


if __name__ == "__main__":
    asyncio.run(main())
