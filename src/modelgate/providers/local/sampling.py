"""Per-request sampling settings and the llama.cpp sampler chain built from them.

A chain is built once per sequence when it joins the batch and freed when it leaves; per token the
engine only calls ``llama_sampler_sample`` (logits -> grammar -> penalties -> top-k -> top-p ->
temperature -> draw, all in C). ``temperature == 0`` is greedy decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modelgate.errors import InvalidRequestError
from modelgate.wire.chat import ResponseFormatJSONObject, ResponseFormatJSONSchema

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
    grammar: str | None = None  # GBNF, root rule "root"

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


def grammar_for(response_format: Any) -> str | None:
    """The GBNF grammar that constrains output to ``response_format`` (None for plain text)."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if isinstance(response_format, ResponseFormatJSONObject):
        return str(JSON_GBNF)
    if isinstance(response_format, ResponseFormatJSONSchema):
        schema = response_format.json_schema.schema_
        if not schema:
            return str(JSON_GBNF)
        try:
            return str(json_schema_to_gbnf(json.dumps(schema)))
        except (ValueError, KeyError, TypeError, NotImplementedError, RecursionError) as exc:
            raise InvalidRequestError(
                f"response_format.json_schema: the local model cannot enforce this schema: {exc}",
                param="response_format",
            ) from exc
    return None


def build_chain(
    lib: Any, vocab: Any, n_vocab: int, params: SamplingParams, *, choice: int, window: int
) -> Any:
    """A new sampler chain for one sequence; the caller frees it with ``llama_sampler_free``.

    ``window`` is how many recent tokens the frequency/presence penalties look at (the whole answer).
    Returns None if llama.cpp rejects the grammar.
    """
    chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
    add = lib.llama_sampler_chain_add
    if params.grammar is not None:
        grammar = lib.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
        if not grammar:
            lib.llama_sampler_free(chain)
            return None
        add(chain, grammar)
    if params.frequency_penalty or params.presence_penalty:
        add(
            chain,
            lib.llama_sampler_init_penalties(
                n_vocab, max(window, 1), 1.0, params.frequency_penalty, params.presence_penalty
            ),
        )
    if params.greedy:
        add(chain, lib.llama_sampler_init_greedy())
        return chain
    if params.top_k > 0:
        add(chain, lib.llama_sampler_init_top_k(params.top_k))
    if params.top_p < 1.0:
        add(chain, lib.llama_sampler_init_top_p(params.top_p, 1))
    add(chain, lib.llama_sampler_init_temp(params.temperature))
    add(chain, lib.llama_sampler_init_dist(params.seed_for(choice)))
    return chain
