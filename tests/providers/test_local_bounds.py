"""Bounds on a client's JSON schema before it becomes a grammar (``providers/local/bounds.py``).

The walk itself (no model): each bound refuses one past it and names the JSON path of the field.
Then, on the real vocabulary, the largest schemas the bounds allow are converted and compiled by
llama.cpp's grammar, and advanced a few tokens: the bounds are safe, not just restrictive.
"""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from modelgate.errors import InvalidRequestError
from modelgate.providers.local.bounds import (
    MAX_DEPTH,
    MAX_ENUM,
    MAX_GRAMMAR_BYTES,
    MAX_NODES,
    MAX_PATTERN_CHARS,
    MAX_PATTERN_EXPANSION,
    MAX_PROPERTIES,
    MAX_REPETITION,
    SchemaBoundError,
    check_grammar,
    check_schema,
)
from modelgate.providers.local.sampling import grammar_for
from modelgate.wire.chat import ChatRequest


def refused(schema: Any) -> SchemaBoundError:
    with pytest.raises(SchemaBoundError) as info:
        check_schema(schema)
    assert isinstance(info.value, InvalidRequestError) and info.value.status_code == 400
    assert info.value.param == f"response_format.json_schema.schema{info.value.path}"
    return info.value


def string(**kw: Any) -> dict[str, Any]:
    return {"type": "string", **kw}


def test_the_schema_that_crashed_the_process_is_refused_naming_its_field() -> None:
    crasher = {"type": "object", "properties": {"summary": string(maxLength=22000)}}
    error = refused(crasher)
    assert error.path == ".properties.summary.maxLength"
    assert "22000" in error.message and str(MAX_REPETITION) in error.message
    assert error.code == "schema_too_complex"


@pytest.mark.parametrize(
    "key", ["maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties"]
)
def test_every_repetition_count_is_bounded(key: str) -> None:
    check_schema({"type": "array", "items": {key: MAX_REPETITION}})
    assert refused({"type": "array", "items": {key: MAX_REPETITION + 1}}).path == f".items.{key}"
    for bad in (-1, 1.5, "12", True, None, 1e308, float("inf")):
        assert refused({key: bad}).path == f".{key}"
    check_schema({key: 7.0})  # an integral float is an integer in JSON


def test_pattern_quantifiers_and_their_expansion_are_bounded() -> None:
    check_schema(string(pattern=f"^a{{{MAX_REPETITION}}}$"))
    assert "1001" in refused(string(pattern="^a{1001}$")).message
    assert "2001" in refused(string(pattern="^[a-z]{0,2001}$")).message
    check_schema(string(pattern="^(a{1000}b{1000}){2}$"))  # (1000 + 1000) x 2 = the bound
    assert str(MAX_PATTERN_EXPANSION) in refused(string(pattern="^(a{1000}b{1000}){2}c$")).message
    assert "1000000" in refused(string(pattern="((a{100}){100}){100}")).message
    check_schema(string(pattern="^\\d{3}-\\d{4}$|^[A-Z]{2}\\d{2}[A-Z0-9]{4}\\d{7}([A-Z0-9]?){0,16}$"))
    check_schema(string(pattern="^[{}]{5}\\{1000000\\}a{,x}$"))  # braces that are no quantifiers
    assert refused(string(pattern="a" * (MAX_PATTERN_CHARS + 1))).path == ".pattern"


def test_nesting_properties_alternatives_and_size_are_bounded() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_DEPTH - 1):
        deep = {"type": "array", "items": deep}
    check_schema(deep)
    error = refused({"type": "array", "items": deep})
    assert error.path.startswith(".items.items") and "nested deeper" in error.message

    props = {f"p{i}": string() for i in range(MAX_PROPERTIES)}
    check_schema({"type": "object", "properties": props})
    assert refused({"type": "object", "properties": {**props, "one_more": string()}}).path == ".properties"

    for key in ("enum", "anyOf", "oneOf", "allOf", "prefixItems"):
        check_schema({key: [{}] * MAX_ENUM})
        assert refused({"items": {key: [{}] * (MAX_ENUM + 1)}}).path == f".items.{key}"

    assert "values" in refused({"enum": [[0] * 99] * (MAX_NODES // 100 + 1)}).message
    check_grammar("x" * MAX_GRAMMAR_BYTES)
    with pytest.raises(SchemaBoundError, match="bytes"):
        check_grammar("x" * (MAX_GRAMMAR_BYTES + 1))


def test_remote_references_are_refused_local_ones_kept() -> None:
    check_schema({"$ref": "#/$defs/a", "$defs": {"a": string()}})
    error = refused({"properties": {"a": {"$ref": "https://example.com/schema.json"}}})
    assert error.path == ".properties.a.$ref" and "local references" in error.message
    assert (
        refused({"properties": {"odd key": {"maxLength": 5000}}}).path == ".properties['odd key'].maxLength"
    )


def _fmt(schema: dict[str, Any]) -> Any:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    }
    return ChatRequest.model_validate(body).response_format


LARGEST = {
    "string": string(minLength=MAX_REPETITION, maxLength=MAX_REPETITION),
    "optional string": string(maxLength=MAX_REPETITION),
    "array": {"type": "array", "items": {"type": "integer"}, "minItems": 10, "maxItems": MAX_REPETITION},
    "pattern": string(pattern="^(a{1000}b{1000}){2}$"),
    "pattern count": string(pattern=f"^[a-z]{{0,{MAX_REPETITION}}}$"),
    "properties": {
        "type": "object",
        "properties": {f"p{i}": string(maxLength=20) for i in range(MAX_PROPERTIES)},
    },
    "required properties": {
        "type": "object",
        "properties": {f"p{i}": {"type": "integer"} for i in range(MAX_PROPERTIES)},
        "required": [f"p{i}" for i in range(MAX_PROPERTIES)],
    },
    "enum": {"enum": [f"value number {i}" for i in range(MAX_ENUM)]},
    "alternatives": {
        "anyOf": [{"type": "object", "properties": {f"k{i}": string()}} for i in range(MAX_ENUM)]
    },
    "object properties": {
        "type": "object",
        "properties": {"a": string()},
        "minProperties": 0,
        "maxProperties": MAX_REPETITION,
    },
}


@pytest.mark.local_model
@pytest.mark.parametrize("name", list(LARGEST))
def test_the_largest_schemas_allowed_compile_in_llama_cpp(name: str, vocab: tuple[Any, Any, int]) -> None:
    lib, v, _ = vocab
    try:
        text = grammar_for(_fmt(LARGEST[name]))
    except InvalidRequestError as exc:  # refused as a whole (the grammar's size): also safe
        assert "grammar of" in exc.message
        return
    assert text is not None and len(text.encode()) <= MAX_GRAMMAR_BYTES
    grammar = lib.llama_sampler_init_grammar(v, text.encode(), b"root")
    assert grammar, name
    try:
        buf = (lib.llama_token * 8)()
        n = lib.llama_tokenize(v, b"{", 1, buf, 8, False, False)
        one = lib.llama_token_data(id=buf[0], logit=0.0, p=0.0)
        arr = lib.llama_token_data_array(data=ctypes.pointer(one), size=1, selected=-1, sorted=False)
        lib.llama_sampler_apply(grammar, ctypes.byref(arr))
        if n == 1 and one.logit == 0.0:  # '{' is allowed: advance the grammar over it
            lib.llama_sampler_accept(grammar, buf[0])
    finally:
        lib.llama_sampler_free(grammar)
