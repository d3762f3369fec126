"""The continuous-batching engine: one thread owns llama.cpp, the worker process submits to it.

It runs inside the local model's worker process (``worker.py``), never in the gateway's.

Each step of the worker loop

1. takes new submissions from the inbox, drops cancelled requests (their KV cells are removed with
   ``llama_memory_seq_rm`` and their sampler chains freed) and admits waiting requests while a free
   ``seq_id`` exists for each of their n choices and their KV reservation (prompt + n * max_tokens)
   fits in the context;
2. fills the one reused ``llama_batch``: the last sampled token of every generating sequence, then
   prompt tokens of requests still in prefill, up to ``n_batch`` tokens (chunked prefill). A prompt
   token belongs to all n sequences of its request at once, so n choices share one prefill;
3. runs one ``llama_decode`` for all of it, then samples every sequence that has an output with its
   own sampler (``sampling.SeqSampler``: temperature, top-p/k, penalties, seed in C; a JSON grammar
   checked against the chosen token, the whole vocabulary masked only when it refuses it);
4. turns tokens into text deltas (cached pieces, incremental UTF-8, stop sequences) and hands the
   step's events (one per request that sampled, with its token counts) to ``deliver`` at once.

Requests join and leave between any two steps; nobody waits for the batch to drain.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from modelgate.errors import (
    GatewayError,
    InvalidRequestError,
    ProviderNotConfiguredError,
    RateLimitError,
    UpstreamError,
)
from modelgate.providers.local.request import EngineStats, Event, GenRequest
from modelgate.providers.local.runtime import LlamaRuntime, RuntimeOptions
from modelgate.providers.local.sampling import Scratch, SeqSampler, build_sampler
from modelgate.providers.local.text import TextAssembler

log = logging.getLogger("modelgate.providers.local")


class _Seq:
    __slots__ = ("index", "last", "pos", "sampler", "seq_id", "text")

    def __init__(self, index: int, seq_id: int, sampler: SeqSampler | None, stops: tuple[str, ...]) -> None:
        self.index = index
        self.seq_id = seq_id
        self.sampler = sampler
        self.text = TextAssembler(stops)
        self.last = -1
        self.pos = 0


class _Active:
    __slots__ = ("cursor", "req", "reserved", "seqs", "tokens")

    def __init__(self, req: GenRequest, tokens: list[int], seqs: list[_Seq], reserved: int) -> None:
        self.req = req
        self.tokens = tokens
        self.cursor = 0  # prompt tokens already in a batch
        self.seqs = seqs  # unfinished sequences
        self.reserved = reserved


Deliver = Callable[[list[tuple[GenRequest, Event]]], None]


class Engine:
    def __init__(self, opts: RuntimeOptions, *, max_queue: int, deliver: Deliver) -> None:
        self.opts = opts
        self._deliver_fn = deliver
        self.parallel = opts.n_seq_max
        self.max_queue = max_queue
        # Prompt tokens after which no further request starts its prefill in the same step: one
        # short prompt per step gives staggered (lower median) time to first token at equal
        # throughput; a long prompt still fills the batch up to n_batch.
        self.prefill_per_step = 32
        self.stats = EngineStats()
        self._cond = threading.Condition()
        self._inbox: deque[GenRequest] = deque()
        self._n_waiting = 0  # submitted, not yet admitted (guarded by _cond)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._avg_seconds = 2.0  # moving average of request durations, for Retry-After
        # Worker-thread state only.
        self._waiting: deque[GenRequest] = deque()
        self._active: list[_Active] = []
        self._free_ids: list[int] = list(range(self.parallel - 1, -1, -1))
        self._reserved = 0

    # -- submitting side (the worker's command thread) ---------------------------------------------

    def start(self) -> concurrent.futures.Future[None]:
        """Start the worker (idempotent); the future resolves once the model is loaded."""
        with self._cond:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="modelgate-local", daemon=True)
                self._thread.start()
        return self._ready

    def submit(self, req: GenRequest) -> None:
        if req.n > self.parallel:
            raise InvalidRequestError(
                f"n: the local model runs at most {self.parallel} sequences at once", param="n"
            )
        with self._cond:
            if self._stopping:
                raise ProviderNotConfiguredError("local model is shut down")
            if self._n_waiting >= self.max_queue:
                wait = self._avg_seconds * (1 + self._n_waiting / max(1, self.parallel))
                raise RateLimitError("local model queue is full", retry_after=wait)
            self._n_waiting += 1
            self.stats.waiting = self._n_waiting
            self._inbox.append(req)
            self._cond.notify()

    @property
    def waiting(self) -> int:
        """Requests submitted and not yet running (the queue that ``max_queue`` bounds)."""
        return self._n_waiting

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def shutdown(self) -> None:
        """Stop the worker, fail what is still queued or running, free llama.cpp (blocking)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
            if thread is None and not self._ready.done():  # never started: fail later start() calls
                self._ready.set_exception(ProviderNotConfiguredError("local model is shut down"))
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- worker thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            import numpy as np  # with llama-cpp-python (the 'local' extra)

            self._as_array: Any = np.ctypeslib.as_array
            rt = LlamaRuntime(self.opts)
        except GatewayError as exc:
            self._ready.set_exception(exc)
            return
        except Exception as exc:  # ImportError (no 'local' extra), OSError from the shared library...
            error = ProviderNotConfiguredError(f"local model: cannot load: {exc}")
            error.__cause__ = exc
            self._ready.set_exception(error)
            return
        self._rt = rt
        self._lib: Any = rt.lib
        self._batch = rt.lib.llama_batch_init(self.opts.n_batch, 0, self.parallel)
        eos = rt.lib.llama_vocab_eos(rt.vocab)
        self._scratch = Scratch(rt.lib, rt.n_vocab, eos if eos in rt.eog else min(rt.eog, default=eos))
        self._ready.set_result(None)
        try:
            self._loop()
        finally:
            self._fail_all(ProviderNotConfiguredError("local model is shut down"))
            self._lib.llama_batch_free(self._batch)
            rt.close()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._inbox or self._active or self._waiting or self._stopping):
                    self._cond.wait()
                if self._stopping:
                    return
                self._waiting.extend(self._inbox)
                self._inbox.clear()
            try:
                self._step()
            except Exception as exc:  # a llama.cpp or bookkeeping failure must not kill the thread
                log.exception("local model step failed")
                error = UpstreamError(f"local model failed: {exc}", provider="local")
                self._fail_all(error, queued_too=False)  # waiting requests never touched llama.cpp

    def _step(self) -> None:
        started = time.perf_counter()
        out: dict[GenRequest, Event] = {}
        self._reap(out)
        self._admit(out)
        if self._active:
            self._decode_and_sample(out)
        self.stats.step_seconds += time.perf_counter() - started
        self._deliver(out)

    def _reap(self, out: dict[GenRequest, Event]) -> None:
        for act in [a for a in self._active if a.req.cancelled]:
            self._finish_request(act, out, emit=False)
        dropped = [r for r in self._waiting if r.cancelled]
        if dropped:
            self._waiting = deque(r for r in self._waiting if not r.cancelled)
            with self._cond:
                self._n_waiting -= len(dropped)
                self.stats.waiting = self._n_waiting

    def _admit(self, out: dict[GenRequest, Event]) -> None:
        rt = self._rt
        while self._waiting and len(self._free_ids) >= self._waiting[0].n:
            req = self._waiting[0]
            if req.tokens is None:
                try:
                    req.tokens = rt.tokenize(rt.render(req.messages))
                except GatewayError as exc:  # this request's own fault: fail it alone
                    self._pop_waiting()
                    out[req] = Event(error=exc)
                    continue
                req.prompt_tokens = len(req.tokens)
            tokens = req.tokens
            room = (rt.n_ctx - len(tokens)) // req.n
            if room < 1:
                self._pop_waiting()
                out[req] = Event(
                    error=InvalidRequestError(
                        f"the prompt ({len(tokens)} tokens) does not fit the local model's "
                        f"context of {rt.n_ctx} tokens",
                        code="context_length_exceeded",
                    )
                )
                continue
            req.max_tokens = min(req.max_tokens, room)
            need = len(tokens) + req.n * req.max_tokens
            if self._active and self._reserved + need > rt.n_ctx:
                return  # wait until running requests free KV cells (FIFO: no overtaking)
            seqs: list[_Seq] = []
            for index in range(req.n):
                if req.params.plain_greedy:
                    seqs.append(_Seq(index, self._free_ids.pop(), None, req.stops))
                    continue
                sampler = build_sampler(
                    self._lib, rt.vocab, req.params, self._scratch, choice=index, window=req.max_tokens
                )
                if sampler is None:
                    for s in seqs:
                        self._free_ids.append(s.seq_id)
                        if s.sampler is not None:
                            s.sampler.free()
                    self._pop_waiting()
                    out[req] = Event(error=InvalidRequestError("response_format: invalid grammar"))
                    break
                seqs.append(_Seq(index, self._free_ids.pop(), sampler, req.stops))
            else:
                self._pop_waiting()
                self._active.append(_Active(req, tokens, seqs, need))
                self._reserved += need
                self.stats.active_seqs = self.parallel - len(self._free_ids)

    def _pop_waiting(self) -> None:
        self._waiting.popleft()
        with self._cond:
            self._n_waiting -= 1
            self.stats.waiting = self._n_waiting

    def _decode_and_sample(self, out: dict[GenRequest, Event]) -> None:
        lib, rt, batch = self._lib, self._rt, self._batch
        b_token, b_pos, b_nseq, b_seq, b_logits = (
            batch.token, batch.pos, batch.n_seq_id, batch.seq_id, batch.logits,
        )  # fmt: skip
        n = 0
        sampling: list[tuple[_Active, _Seq, int]] = []
        for act in self._active:
            if act.cursor < len(act.tokens):
                continue
            for seq in act.seqs:
                b_token[n] = seq.last
                b_pos[n] = seq.pos
                b_nseq[n] = 1
                b_seq[n][0] = seq.seq_id
                b_logits[n] = 1
                seq.pos += 1
                sampling.append((act, seq, n))
                n += 1
        prefill = 0
        limit = self.opts.n_batch
        for act in self._active:
            left = len(act.tokens) - act.cursor
            if left <= 0:
                continue
            if n >= limit or prefill >= self.prefill_per_step:
                break  # FIFO: later prompts start next step (staggered first tokens)
            take = min(left, limit - n)
            ids = [s.seq_id for s in act.seqs]
            for i in range(act.cursor, act.cursor + take):
                b_token[n] = act.tokens[i]
                b_pos[n] = i
                b_nseq[n] = len(ids)
                row = b_seq[n]
                for j, sid in enumerate(ids):
                    row[j] = sid
                b_logits[n] = 0
                n += 1
            act.cursor += take
            prefill += take
            if act.cursor == len(act.tokens):
                b_logits[n - 1] = 1
                for seq in act.seqs:
                    seq.pos = len(act.tokens)
                    sampling.append((act, seq, n - 1))
        batch.n_tokens = n
        t0 = time.perf_counter()
        rc = lib.llama_decode(rt.ctx, batch)
        stats = self.stats
        stats.decode_seconds += time.perf_counter() - t0
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        stats.steps += 1
        stats.prefill_tokens += prefill
        stats.max_seqs_in_step = max(stats.max_seqs_in_step, len(sampling))
        eog, piece = rt.eog, rt.piece
        logits_ith, as_array, n_vocab = lib.llama_get_logits_ith, self._as_array, rt.n_vocab
        ctx = rt.ctx
        for act, seq, idx in sampling:
            req = act.req
            if seq.sampler is None:  # plain greedy: argmax of the logits, first maximum as llama.cpp
                token = int(as_array(logits_ith(ctx, idx), shape=(n_vocab,)).argmax())
            else:
                token = seq.sampler.sample(ctx, idx)
            req.completion_tokens[seq.index] += 1
            finish: str | None = None
            if token in eog:
                text, finish = seq.text.flush(), "stop"
            else:
                text, stopped = seq.text.feed(piece(token))
                if stopped:
                    finish = "stop"
                elif req.completion_tokens[seq.index] >= req.max_tokens:
                    text, finish = text + seq.text.flush(), "length"
                else:
                    seq.last = token
            ev = out.setdefault(req, Event())  # even without text: it carries the token counts
            if text or finish is not None:
                ev.choices.append((seq.index, text, finish))
            if finish is not None:
                self._free_seq(act, seq)
        stats.generated_tokens += len(sampling)
        for act in [a for a in self._active if not a.seqs]:
            self._finish_request(act, out, emit=True)

    def _free_seq(self, act: _Active, seq: _Seq) -> None:
        self._lib.llama_memory_seq_rm(self._rt.memory, seq.seq_id, -1, -1)
        if seq.sampler is not None:
            seq.sampler.free()
        self._free_ids.append(seq.seq_id)
        act.seqs.remove(seq)

    def _finish_request(self, act: _Active, out: dict[GenRequest, Event], *, emit: bool) -> None:
        for seq in list(act.seqs):
            self._free_seq(act, seq)
        self._active.remove(act)
        self._reserved -= act.reserved
        self.stats.active_seqs = self.parallel - len(self._free_ids)
        if emit:
            out.setdefault(act.req, Event()).done = True
            elapsed = time.monotonic() - act.req.submitted_at
            self._avg_seconds = 0.9 * self._avg_seconds + 0.1 * elapsed

    def _deliver(self, out: dict[GenRequest, Event]) -> None:
        """Every step ends here, with or without events (the statistics may have changed)."""
        self._deliver_fn(list(out.items()))

    def _fail_all(self, error: GatewayError, *, queued_too: bool = True) -> None:
        out: dict[GenRequest, Event] = {}
        for act in list(self._active):
            self._finish_request(act, out, emit=False)
            out[act.req] = Event(error=error)
        if not queued_too:
            self._deliver(out)
            return
        with self._cond:
            pending = [*self._waiting, *self._inbox]
            self._waiting.clear()
            self._inbox.clear()
            self._n_waiting = 0
            self.stats.waiting = 0
        for req in pending:
            out[req] = Event(error=error)
        self._deliver(out)
