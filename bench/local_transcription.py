"""Speed and accuracy of the embedded speech recogniser (PocketSphinx, US English), in-process.

    .venv/bin/python bench/local_transcription.py [--rounds 3]

Each sample of ``tests/media/data`` (two LibriVox recordings, two eSpeak NG sentences) goes through
``LocalProvider.transcribe`` (the recognition worker process, as the gateway runs it) ``--rounds``
times, one after the other. Prints per sample the real-time factor (decoding seconds / audio
seconds; the best and the median round: the machine is shared) and the words heard, then the word
error rate against ``transcripts.json``, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from modelgate.catalog.models import ModelSpec, ProviderConfig  # noqa: E402
from modelgate.providers.base import ProviderContext, TranscriptionCall  # noqa: E402
from modelgate.providers.local import create  # noqa: E402
from tests.media.test_pocketsphinx import DATA, SAMPLES, word_errors  # noqa: E402

SPEC = ModelSpec.model_validate(
    {
        "id": "local/pocketsphinx-en-us",
        "type": "transcription",
        "pricing": {"per_unit_usd": {"second": 0.00001}},
        "routes": [{"provider": "local", "model": "pocketsphinx-en-us"}],
    }
)


async def main(rounds: int) -> None:
    provider = create("local", ProviderConfig(type="local"), ProviderContext())
    started = time.perf_counter()
    await asyncio.wrap_future(provider.recognizer.worker.start())
    print(f"worker started and model loaded in {time.perf_counter() - started:.2f} s")
    errors = words = 0
    try:
        for name, reference in SAMPLES.items():
            data = (DATA / name).read_bytes()
            call = TranscriptionCall(
                file=data,
                filename=name,
                content_type="audio/wav",
                upstream_model="pocketsphinx-en-us",
                model=SPEC,
            )
            times, text, seconds = [], "", 1.0
            for _ in range(rounds):
                t0 = time.perf_counter()
                t = await provider.transcribe(call)
                times.append(time.perf_counter() - t0)
                text, seconds = t.text, t.duration or 1.0
            wrong = word_errors(reference, text)
            errors, words = errors + wrong, words + len(reference.split())
            print(
                f"{name:28s} {seconds:5.2f} s audio  RTF best {min(times) / seconds:.3f}"
                f" median {statistics.median(times) / seconds:.3f}  {wrong}/{len(reference.split())} wrong"
                f"  heard: {text!r}"
            )
    finally:
        await provider.aclose()
    print(f"word error rate {errors}/{words} = {errors / words:.2f}; load average {os.getloadavg()[0]:.1f}")
    print(json.dumps({"wer": round(errors / words, 3)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
