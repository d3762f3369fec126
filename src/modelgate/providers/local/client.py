"""The gateway's handles on the worker processes (``supervisor.py``).

``EngineClient`` (``LocalProvider.engine``) submits chat calls to the engine in the chat worker and
reads back their events; ``EmbedderClient`` (``LocalProvider.embedder``) sends embedding calls to
the embedding worker; ``RecognizerClient`` (``LocalProvider.recognizer``) sends WAV files to the
speech-recognition worker. Each call is a handle whose ``deliver`` / ``fail`` run on the caller's event
loop; the token counts arrive with every step's events and are reported to
``ProviderCall.on_usage`` there, so a cancelled or failed call is charged exactly what it produced.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Callable
from typing import Any

from modelgate.errors import GatewayError, InvalidRequestError
from modelgate.providers.base import Usage
from modelgate.providers.local.embedder import EmbedOptions
from modelgate.providers.local.ipc import decode_error
from modelgate.providers.local.recognizer import RecognizeOptions
from modelgate.providers.local.recognizer import Result as RecognizeResult
from modelgate.providers.local.request import EngineStats, Event
from modelgate.providers.local.runtime import RuntimeOptions
from modelgate.providers.local.sampling import SamplingParams
from modelgate.providers.local.supervisor import Supervisor


class GenCall:
    """One chat call in flight: its events, exact token counts, and ``cancel``."""

    def __init__(self, client: EngineClient, n: int, on_usage: Callable[[Usage], None] | None) -> None:
        self._client = client
        self.n = n
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self._on_usage = on_usage
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.rid = 0
        self.finished = False

    def deliver(self, payload: Any) -> None:
        choices, done, prompt_tokens, completion_tokens, error = payload
        if (prompt_tokens, completion_tokens) != (self.prompt_tokens, self.completion_tokens):
            self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens
            if self._on_usage is not None:
                self._on_usage(self.usage())
        err = decode_error(error, provider=self._client.provider) if error is not None else None
        self.queue.put_nowait(Event(choices=choices, done=done, error=err))

    def fail(self, error: GatewayError) -> None:
        self.queue.put_nowait(Event(error=error))

    def usage(self) -> Usage:
        """Exact counts so far: the templated prompt, and every sampled token (an end token too)."""
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)

    def cancel(self) -> None:
        """Stop generating (no-op once finished): the engine frees the sequences at its next step."""
        if not self.finished:
            self.finished = True
            self._client.worker.cancel(self.rid)

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


class EngineClient:
    """The chat worker: the continuous-batching engine over SmolLM2, one process."""

    def __init__(self, opts: RuntimeOptions, *, max_queue: int, provider: str) -> None:
        self.opts = opts
        self.parallel = opts.n_seq_max
        self.provider = provider
        self.worker = Supervisor(
            kind="chat", options=(opts, max_queue), provider=provider, label="local model"
        )

    def start(self) -> concurrent.futures.Future[None]:
        """Start the worker (idempotent); the future resolves once its model is loaded."""
        return self.worker.start()

    def submit(
        self,
        *,
        messages: list[dict[str, str]],
        params: SamplingParams,
        n: int,
        max_tokens: int,
        stops: tuple[str, ...],
        on_usage: Callable[[Usage], None] | None = None,
    ) -> GenCall:
        if n > self.parallel:
            raise InvalidRequestError(
                f"n: the local model runs at most {self.parallel} sequences at once", param="n"
            )
        call = GenCall(self, n, on_usage)
        call.rid = self.worker.call(call, (messages, params, n, max_tokens, stops))
        return call

    @property
    def stats(self) -> EngineStats:
        """The engine's statistics as of its last step (sent with the step's events)."""
        stats = self.worker.stats
        return stats if isinstance(stats, EngineStats) else EngineStats()

    @property
    def waiting(self) -> int:
        """Requests submitted and not yet running (the queue that ``max_queue`` bounds)."""
        return self.stats.waiting

    @property
    def pid(self) -> int | None:
        return self.worker.pid

    def shutdown(self) -> None:
        """Stop the worker; what is still queued or running fails (blocking)."""
        self.worker.shutdown()


class _OneAnswer:
    """A call answered by one message (embeddings, a transcript): its result or error."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[Any] = self.loop.create_future()

    def deliver(self, payload: Any) -> None:
        result, error = payload
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(decode_error(error, provider=self.provider))
        elif result is not None:
            self.future.set_result(result)

    def fail(self, error: GatewayError) -> None:
        if not self.future.done():
            self.future.set_exception(error)


async def _ask(worker: Supervisor, payload: Any) -> Any:
    """Start the worker if need be, send one call, wait for its answer (cancelled: told to stop)."""
    await asyncio.wrap_future(worker.start())
    call = _OneAnswer(worker.provider)
    rid = worker.call(call, payload)
    try:
        return await call.future
    finally:
        if not call.future.done():
            worker.cancel(rid)


class EmbedderClient:
    """The embedding worker: all-MiniLM-L6-v2 on onnxruntime, one process."""

    def __init__(self, opts: EmbedOptions, *, provider: str) -> None:
        self.opts = opts
        self.provider = provider
        self.worker = Supervisor(kind="embed", options=opts, provider=provider, label="local embedding model")

    async def embed(self, inputs: list[str] | list[list[int]]) -> tuple[list[list[float]], int]:
        """One L2-normalised vector per input, and the tokens embedded ([CLS]/[SEP] included)."""
        result: tuple[list[list[float]], int] = await _ask(self.worker, inputs)
        return result

    @property
    def runs(self) -> int:
        """``session.run`` calls so far (statistics: the batching proof of the tests)."""
        stats = self.worker.stats
        return int(stats[0]) if stats else 0

    @property
    def embedded(self) -> int:
        stats = self.worker.stats
        return int(stats[1]) if stats else 0

    @property
    def pid(self) -> int | None:
        return self.worker.pid

    def shutdown(self) -> None:
        self.worker.shutdown()


class RecognizerClient:
    """The recognition worker: PocketSphinx's US-English model, one process."""

    def __init__(self, opts: RecognizeOptions, *, provider: str) -> None:
        self.opts = opts
        self.worker = Supervisor(
            kind="recognize", options=opts, provider=provider, label="local speech recogniser"
        )

    async def recognize(self, wav: bytes) -> RecognizeResult:
        """The words of a WAV file: (text, duration, segments, words) as ``recognizer.Result``."""
        result: RecognizeResult = await _ask(self.worker, wav)
        return result

    @property
    def seconds(self) -> float:
        """Seconds of audio recognised by the current worker (statistics)."""
        stats = self.worker.stats
        return float(stats[1]) if stats else 0.0

    def shutdown(self) -> None:
        self.worker.shutdown()
