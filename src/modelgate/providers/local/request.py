"""What the engine works on and hands out: a submitted request, its events, the statistics.

These live in the worker process (``worker.py``): its command thread creates a ``GenRequest`` per
call, the engine thread writes its counters and hands each step's ``Event``s to the engine's
``deliver`` callback, which sends them to the gateway process (``client.py`` reads them there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from modelgate.errors import GatewayError
from modelgate.providers.local.sampling import SamplingParams

ChoiceDelta = tuple[int, str, str | None]  # (choice index, text, finish_reason)


@dataclass(slots=True)
class Event:
    choices: list[ChoiceDelta] = field(default_factory=list)
    done: bool = False
    error: GatewayError | None = None


@dataclass(slots=True)
class EngineStats:
    steps: int = 0
    prefill_tokens: int = 0
    generated_tokens: int = 0
    max_seqs_in_step: int = 0  # most sequences sampled after one llama_decode (batching proof)
    active_seqs: int = 0
    waiting: int = 0
    decode_seconds: float = 0.0  # inside llama_decode
    step_seconds: float = 0.0  # whole steps: decode + sampling + Python bookkeeping


class GenRequest:
    """One submitted call, inside the worker process. The engine thread writes the counters."""

    def __init__(
        self,
        *,
        rid: int,
        messages: list[dict[str, str]],
        params: SamplingParams,
        n: int,
        max_tokens: int,
        stops: tuple[str, ...],
        wake: Callable[[], None],
    ) -> None:
        self.rid = rid
        self._wake = wake
        self.messages = messages
        self.params = params
        self.n = n
        self.max_tokens = max_tokens
        self.stops = stops
        self.cancelled = False
        self.tokens: list[int] | None = None  # the templated prompt, tokenized by the engine thread
        self.prompt_tokens = 0
        self.completion_tokens = [0] * n  # every sampled token of each choice (an end token too)
        self.submitted_at = time.monotonic()

    def cancel(self) -> None:
        """Stop generating: the engine frees the sequences at its next step."""
        if not self.cancelled:
            self.cancelled = True
            self._wake()
