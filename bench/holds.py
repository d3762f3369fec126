"""CPU of a Messages request's hold on the Claude-Code-shaped session, in process.

    .venv/bin/python bench/holds.py [REF_SRC ...]      # e.g. a worktree's src of another commit

Times the door's prompt walk (``prompt_bound``: the token bound, cache markers, server tools and,
since the prompt-cache record, the prefix digests) on the 30 request bodies of
``tests/doors/test_hold_tightness.py`` (12-170 KB each, the shapes Claude Code sends), already
parsed as the door parses them. With source directories as arguments, each is timed in its own
interpreter, interleaved over rounds (A B A B ...), and the ratio to the first is printed: an A/B of
the estimator alone, steadier than a whole-gateway run on a busy machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("HOLDS_ROUNDS", "5"))
REPEAT = int(os.environ.get("HOLDS_REPEAT", "20"))


def measure(bodies: Path) -> float:
    """Microseconds of CPU per request (median over the session's turns, min over repeats)."""
    from modelgate.doors.messages.estimate import prompt_bound
    from modelgate.doors.messages.wire import MessagesRequest

    reqs = [MessagesRequest.model_validate(b) for b in json.loads(bodies.read_text())]
    per_turn = []
    for req in reqs:
        best = float("inf")
        for _ in range(REPEAT):
            t0 = time.process_time_ns()
            prompt_bound(req)
            best = min(best, time.process_time_ns() - t0)
        per_turn.append(best / 1000)
    return statistics.median(per_turn)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(f"{measure(Path(sys.argv[2])):.1f}")
        return
    sys.path.insert(0, str(ROOT))
    from tests.doors.test_hold_tightness import _session

    bodies = Path(tempfile.mkdtemp()) / "session.json"
    bodies.write_text(json.dumps(_session()))
    srcs = sys.argv[1:] or [str(ROOT / "src")]
    results: dict[str, list[float]] = {s: [] for s in srcs}
    for _ in range(ROUNDS):
        for src in srcs:
            env = {**os.environ, "PYTHONPATH": src}
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(bodies)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            results[src].append(float(out.stdout.strip()))
    first = statistics.median(results[srcs[0]])
    for src, values in results.items():
        med = statistics.median(values)
        print(f"{src}: prompt_bound {med:.1f} us per request (median of {values}) x{med / first:.2f}")


if __name__ == "__main__":
    main()
