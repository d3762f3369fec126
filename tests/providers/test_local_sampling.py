"""The local model's lazy grammar sampling (JSON mode) against llama.cpp's grammar, on the real vocabulary.

No decoding here: the vocabulary of the shipped GGUF is loaded alone, and logits are made up, so a
few hundred sampling decisions take milliseconds. The lazy sampler must choose exactly what masking
the whole vocabulary with the grammar first would choose.
"""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from modelgate.providers.local.sampling import SamplingParams, Scratch, build_sampler

pytestmark = pytest.mark.local_model


def _json_grammar() -> str:
    from llama_cpp.llama_grammar import JSON_GBNF

    return str(JSON_GBNF)


def _masked_argmax(lib: Any, grammar: Any, scratch: Scratch, logits: Any) -> int:
    """Grammar first, then greedy: what llama.cpp's chain did before the lazy check."""
    scratch.fill(logits)
    lib.llama_sampler_apply(grammar, scratch.cand_p)
    return int(scratch.cand["logit"].argmax())


def _piece(lib: Any, vocab: Any, token: int) -> str:
    buf = bytes(64)
    n = lib.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
    return buf[: max(n, 0)].decode("utf-8", "replace")


def test_greedy_lazy_check_equals_masking_first(vocab: tuple[Any, Any, int]) -> None:
    np = pytest.importorskip("numpy")
    lib, v, n_vocab = vocab
    scratch = Scratch(lib, n_vocab, eos=0)
    lazy = build_sampler(
        lib, v, SamplingParams(temperature=0, grammar=_json_grammar()), scratch, choice=0, window=1
    )
    assert lazy is not None
    reference = lib.llama_sampler_init_grammar(v, _json_grammar().encode(), b"root")
    rng = np.random.default_rng(7)
    answers: list[list[str]] = []
    refused_best = 0
    try:
        for step in range(300):
            if step % 20 == 0:  # new answers: structural positions, where most tokens are refused
                lib.llama_sampler_reset(lazy._grammar)
                lib.llama_sampler_reset(reference)
                answers.append([])
            logits = rng.normal(0, 3, n_vocab).astype(np.float32)
            expected = _masked_argmax(lib, reference, scratch, logits)
            refused_best += expected != int(logits.argmax())
            got = lazy._greedy(logits)
            assert got == expected
            lib.llama_sampler_accept(lazy._grammar, got)
            lib.llama_sampler_accept(reference, got)
            answers[-1].append(_piece(lib, v, got))
    finally:
        lazy.free()
        lib.llama_sampler_free(reference)
    assert refused_best >= 15  # the unconstrained best was refused at least once per answer
    assert all("".join(answer).lstrip().startswith("{") for answer in answers), answers


def test_drawn_tokens_always_satisfy_the_grammar(vocab: tuple[Any, Any, int]) -> None:
    np = pytest.importorskip("numpy")
    lib, v, n_vocab = vocab
    scratch = Scratch(lib, n_vocab, eos=0)
    params = SamplingParams(temperature=1.0, top_k=40, seed=3, grammar=_json_grammar())
    lazy = build_sampler(lib, v, params, scratch, choice=0, window=64)
    assert lazy is not None
    check = lib.llama_sampler_init_grammar(v, _json_grammar().encode(), b"root")
    rng = np.random.default_rng(11)
    try:
        for _ in range(200):
            logits = rng.normal(0, 3, n_vocab).astype(np.float32)
            token = lazy._drawn(logits)
            lib.llama_sampler_accept(lazy._grammar, token)
            # the reference grammar, advanced in step, must allow every drawn token
            scratch.one.id, scratch.one.logit = token, 0.0
            lib.llama_sampler_apply(check, scratch.one_p)
            assert scratch.one.logit == 0.0
            lib.llama_sampler_accept(check, token)
    finally:
        lazy.free()
        lib.llama_sampler_free(check)


def test_a_grammar_with_a_closed_object_ends_with_the_end_token(vocab: tuple[Any, Any, int]) -> None:
    """Once the JSON value is complete, only whitespace or the end of generation is allowed."""
    np = pytest.importorskip("numpy")
    lib, v, n_vocab = vocab
    eos = lib.llama_vocab_eos(v)
    scratch = Scratch(lib, n_vocab, eos=eos)
    lazy = build_sampler(
        lib, v, SamplingParams(temperature=0, grammar=_json_grammar()), scratch, choice=0, window=1
    )
    assert lazy is not None
    buf = (lib.llama_token * 16)()
    n = lib.llama_tokenize(v, b'{"a": 1}', 8, buf, 16, False, False)
    try:
        for token in buf[:n]:
            lib.llama_sampler_accept(lazy._grammar, token)
        logits = np.zeros(n_vocab, dtype=np.float32)
        logits[eos] = 5.0
        logits[buf[0]] = 9.0  # another "{" would be the unconstrained choice
        assert lazy._greedy(logits) == eos
    finally:
        lazy.free()


@pytest.mark.parametrize("kind", ["json_object", "json_schema"])
def test_strings_never_hold_raw_control_characters(vocab: tuple[Any, Any, int], kind: str) -> None:
    """A raw newline inside a JSON string makes the answer unparseable: the grammar must refuse it
    (llama-cpp-python's schema converter allowed it; seen as '{ "city": "Paris }\\n\\nYou can"}')."""
    from modelgate.providers.local.sampling import grammar_for
    from modelgate.wire.chat import ChatRequest

    lib, v, _ = vocab
    response_format: dict[str, Any] = {"type": "json_object"}
    if kind == "json_schema":
        schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24}}}
        response_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    request = ChatRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": response_format}
    )
    grammar = lib.llama_sampler_init_grammar(v, str(grammar_for(request.response_format)).encode(), b"root")
    assert grammar

    def tokens(text: str) -> list[int]:
        buf = (lib.llama_token * 64)()
        n = lib.llama_tokenize(v, text.encode(), len(text.encode()), buf, 64, False, False)
        return list(buf[:n])

    def allowed(token: int) -> bool:
        one = lib.llama_token_data(id=token, logit=0.0, p=0.0)
        arr = lib.llama_token_data_array(data=ctypes.pointer(one), size=1, selected=-1, sorted=False)
        lib.llama_sampler_apply(grammar, ctypes.byref(arr))
        return bool(one.logit == 0.0)

    try:
        for token in tokens('{"city": "Pa'):
            lib.llama_sampler_accept(grammar, token)
        (newline,) = tokens("\n")
        (tab,) = tokens("\t")
        assert not allowed(newline) and not allowed(tab)
        assert all(allowed(t) for t in tokens("ris"))
    finally:
        lib.llama_sampler_free(grammar)
