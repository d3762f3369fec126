"""What crosses the thread boundary: a submitted request, its events, the engine's statistics.

The event loop creates a ``GenRequest`` and reads its ``queue``; the worker thread writes the
counters and puts ``Event``s on the queue through ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from modelgate.errors import GatewayError
from modelgate.providers.base import Usage
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
    """One submitted call. The worker writes counters and events; the event loop reads them."""

    def __init__(
        self,
        *,
        messages: list[dict[str, str]],
        params: SamplingParams,
        n: int,
        max_tokens: int,
        stops: tuple[str, ...],
        loop: asyncio.AbstractEventLoop,
        wake: Callable[[], None],
        on_usage: Callable[[Usage], None] | None = None,
    ) -> None:
        self._wake = wake
        self.messages = messages
        self.params = params
        self.n = n
        self.max_tokens = max_tokens
        self.stops = stops
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.cancelled = False
        self.finished = False
        self.tokens: list[int] | None = None  # the templated prompt, tokenized by the worker
        self.prompt_tokens = 0
        self.completion_tokens = [0] * n
        # Told the live totals by the worker as tokens are sampled (``ProviderCall.on_usage``).
        self._on_usage = on_usage
        self.submitted_at = time.monotonic()

    def usage(self) -> Usage:
        """Exact counts so far: the templated prompt, and every sampled token (an end token too)."""
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=sum(self.completion_tokens))

    def report(self) -> None:
        """The worker, after each count changes: the running totals to ``ProviderCall.on_usage``."""
        if self._on_usage is not None:
            self._on_usage(self.usage())

    def cancel(self) -> None:
        """Stop generating (no-op once finished): the worker frees the sequences at its next step."""
        if not self.finished and not self.cancelled:
            self.cancelled = True
            self._wake()

    async def events(self) -> AsyncIterator[Event]:
        while True:
            ev = await self.queue.get()
            if ev.error is not None:
                self.finished = True
                raise ev.error
            if ev.done:
                self.finished = True
            yield ev
            if ev.done:
                return
