"""Per-request sampling settings and the llama.cpp sampler chain built from them.

A sampler is built once per sequence when it joins the batch and freed when it leaves. Per token,
an unconstrained sequence makes one ``llama_sampler_sample`` call (logits -> penalties -> top-k ->
top-p -> temperature -> draw, all in C); a grammar (JSON mode) is checked lazily against the chosen
token only (``SeqSampler``). ``temperature == 0`` is greedy decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modelgate.errors import InvalidRequestError
from modelgate.providers.local.bounds import check_grammar, check_schema
from modelgate.wire.chat import ResponseFormatJSONObject, ResponseFormatJSONSchema

FormatSpec = tuple[str, Any]  # ("json_object", None) | ("json_schema", schema): picklable, checked

# llama.cpp draws a random seed for the distribution sampler when given this value.
RANDOM_SEED = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = disabled
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    format: FormatSpec | None = None  # response_format, checked (``format_spec``)
    grammar: str | None = None  # GBNF, root rule "root": built from ``format`` in the worker

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    @property
    def plain_greedy(self) -> bool:
        """Greedy with nothing else in the chain: the engine takes the argmax itself (faster)."""
        return self.greedy and self.grammar is None and not (self.frequency_penalty or self.presence_penalty)

    def seed_for(self, choice: int) -> int:
        """Choice ``k`` of a seeded request draws with ``seed + k``: same seed => same n choices."""
        if self.seed is None:
            return RANDOM_SEED
        return (self.seed + choice) % RANDOM_SEED


def format_spec(response_format: Any) -> FormatSpec | None:
    """What the worker needs to build the grammar (None for plain text); a schema beyond the
    bounds of ``bounds.py`` is refused here, in the gateway, before any native code sees it."""
    if isinstance(response_format, ResponseFormatJSONObject):
        return ("json_object", None)
    if isinstance(response_format, ResponseFormatJSONSchema):
        schema = response_format.json_schema.schema_
        if not schema:
            return ("json_object", None)
        check_schema(schema)
        return ("json_schema", schema)
    return None


def grammar_for(response_format: Any) -> str | None:
    """The GBNF grammar that constrains output to ``response_format`` (None for plain text)."""
    return grammar_from_spec(format_spec(response_format))


def grammar_from_spec(spec: FormatSpec | None) -> str | None:
    """The GBNF grammar of a checked ``format_spec`` (in the worker process: the converter and
    everything after it run there)."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if spec is None:
        return None
    kind, schema = spec
    if kind == "json_object":
        return str(JSON_GBNF)
    try:
        grammar = str(json_schema_to_gbnf(json.dumps(schema)))
    except (ValueError, KeyError, TypeError, NotImplementedError, RecursionError, OverflowError) as exc:
        raise InvalidRequestError(
            f"response_format.json_schema: the local model cannot enforce this schema: {exc}",
            param="response_format",
        ) from exc
    check_grammar(grammar)
    # llama-cpp-python's converter lets a string hold any character but '"' and '\\', raw
    # newlines and other control characters included, which no JSON parser accepts: the class
    # is narrowed as in llama.cpp's own JSON grammar (JSON_GBNF).
    return grammar.replace(_LOOSE_STRING_CHAR, _JSON_STRING_CHAR)


_LOOSE_STRING_CHAR = r'[^"\\]'
_JSON_STRING_CHAR = r'[^"\\\x7F\x00-\x1F]'


def build_sampler(
    lib: Any, vocab: Any, params: SamplingParams, scratch: Scratch, *, choice: int, window: int
) -> SeqSampler | None:
    """A new sampler for one sequence; the caller frees it with ``free()``.

    ``window`` is how many recent tokens the frequency/presence penalties look at (the whole answer).
    Returns None if llama.cpp rejects the grammar.
    """
    grammar = None
    if params.grammar is not None:
        grammar = lib.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
        if not grammar:
            return None
    chain = None
    penalties = bool(params.frequency_penalty or params.presence_penalty)
    if penalties or not params.greedy:
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        add = lib.llama_sampler_chain_add
        if penalties:
            add(
                chain,
                lib.llama_sampler_init_penalties(
                    scratch.n_vocab, max(window, 1), 1.0, params.frequency_penalty, params.presence_penalty
                ),
            )
        if params.greedy:
            add(chain, lib.llama_sampler_init_greedy())
        else:
            if params.top_k > 0:
                add(chain, lib.llama_sampler_init_top_k(params.top_k))
            if params.top_p < 1.0:
                add(chain, lib.llama_sampler_init_top_p(params.top_p, 1))
            add(chain, lib.llama_sampler_init_temp(params.temperature))
            add(chain, lib.llama_sampler_init_dist(params.seed_for(choice)))
    return SeqSampler(lib, scratch, chain, grammar)


class Scratch:
    """Buffers shared by the samplers of one worker thread (never used by two threads).

    ``cand`` is a NumPy record array laid out exactly as llama.cpp's ``llama_token_data`` (id, logit,
    p), so a whole vocabulary of candidates is refilled from the logits without a Python loop, and
    ``one`` is a single candidate for checking one token against a grammar.
    """

    def __init__(self, lib: Any, n_vocab: int, eos: int) -> None:
        import ctypes

        import numpy as np

        self.np = np
        self.n_vocab = n_vocab
        self.eos = eos
        self.as_array = np.ctypeslib.as_array
        self.cand = np.zeros(n_vocab, dtype=np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]))
        if self.cand.dtype.itemsize != ctypes.sizeof(lib.llama_token_data):
            raise RuntimeError("llama_token_data is not laid out as (int32 id, float logit, float p)")
        self.ids = np.arange(n_vocab, dtype=np.int32)
        self.cand_arr = lib.llama_token_data_array(
            data=self.cand.ctypes.data_as(lib.llama_token_data_p), size=n_vocab, selected=-1, sorted=False
        )
        self.cand_p = ctypes.byref(self.cand_arr)
        self.one = lib.llama_token_data()
        self.one_arr = lib.llama_token_data_array(
            data=ctypes.pointer(self.one), size=1, selected=-1, sorted=False
        )
        self.one_p = ctypes.byref(self.one_arr)

    def fill(self, logits: Any) -> None:
        """Every token of the vocabulary as a candidate, with its logit."""
        cand = self.cand
        cand["id"] = self.ids
        cand["logit"] = logits
        arr = self.cand_arr
        arr.size, arr.selected, arr.sorted = self.n_vocab, -1, False

    def selected(self) -> int:
        arr = self.cand_arr
        return int(arr.data[arr.selected].id)


class SeqSampler:
    """One sequence's sampling: an optional llama.cpp chain and an optional grammar, checked lazily.

    A grammar is not applied to the whole vocabulary first (that costs about as much as a decode step
    of this small model). The token is chosen as if unconstrained, then checked alone against the
    grammar; only when the grammar refuses it is the choice redone on the constrained candidates
    (llama-server does the same). The distribution is unchanged: an allowed token is drawn with
    probability p, or after a refusal with probability p / (mass of the allowed tokens), which sum to
    the constrained probability. Greedy decoding checks the best few tokens one by one before
    masking the whole vocabulary, which gives the same token: the best allowed one.
    """

    __slots__ = ("_chain", "_grammar", "_lib", "_s")

    GREEDY_CANDIDATES = 16

    def __init__(self, lib: Any, scratch: Scratch, chain: Any, grammar: Any) -> None:
        self._lib = lib
        self._s = scratch
        self._chain = chain
        self._grammar = grammar

    def sample(self, ctx: Any, idx: int) -> int:
        lib, chain, grammar = self._lib, self._chain, self._grammar
        if grammar is None:
            return int(lib.llama_sampler_sample(chain, ctx, idx))
        logits = self._s.as_array(lib.llama_get_logits_ith(ctx, idx), shape=(self._s.n_vocab,))
        token = self._greedy(logits) if chain is None else self._drawn(logits)
        if token >= 0:
            lib.llama_sampler_accept(grammar, token)
            return token
        return self._s.eos  # the grammar allows no token at all: end the answer

    def _allowed(self, token: int) -> bool:
        one = self._s.one
        one.id, one.logit = token, 0.0
        self._s.one_arr.size = 1
        self._lib.llama_sampler_apply(self._grammar, self._s.one_p)
        return bool(one.logit == 0.0)

    def _greedy(self, logits: Any) -> int:
        best = int(logits.argmax())
        if self._allowed(best):
            return best
        np, k = self._s.np, self.GREEDY_CANDIDATES
        top = np.argpartition(-logits, k)[:k]
        for token in top[np.lexsort((top, -logits[top]))][1:]:  # best first (ties: lowest id first)
            if self._allowed(int(token)):
                return int(token)
        s = self._s
        s.fill(logits)
        self._lib.llama_sampler_apply(self._grammar, s.cand_p)
        masked = s.cand["logit"]
        i = int(masked.argmax())
        return i if masked[i] != -np.inf else -1

    def _drawn(self, logits: Any) -> int:
        lib, chain, s = self._lib, self._chain, self._s
        s.fill(logits)
        lib.llama_sampler_apply(chain, s.cand_p)
        token = s.selected()
        if not self._allowed(token):
            s.fill(logits)
            lib.llama_sampler_apply(self._grammar, s.cand_p)
            if not (s.cand["logit"] != -s.np.inf).any():
                return -1
            lib.llama_sampler_apply(chain, s.cand_p)
            token = s.selected()
        lib.llama_sampler_accept(chain, token)
        return token

    def free(self) -> None:
        for sampler in (self._chain, self._grammar):
            if sampler is not None:
                self._lib.llama_sampler_free(sampler)
        self._chain = self._grammar = None
