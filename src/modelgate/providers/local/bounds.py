"""Bounds on what a client's JSON schema may turn into before native code sees it.

``response_format: json_schema`` becomes a GBNF grammar (llama-cpp-python's converter) that
llama.cpp parses and runs for every sampled token. Repetition counts are expanded into the grammar
(``"maxLength": n`` gives n nested optional rules), and llama.cpp's parser and grammar engine are
recursive C++: an unbounded count crashed the whole process (``maxLength`` 22000: SIGSEGV), and
counts above 2000 are refused by llama.cpp itself. So the schema is walked first, and anything
beyond these bounds is a 400 naming the JSON path of the offending field (relative to the schema).
The numbers are documented in ``docs/local-model.md``.

Each bound is far above what a structured answer of this model needs (its context is 8192 tokens)
and well below what llama.cpp handles safely (measured: ``tests/providers/test_local_bounds.py``).
"""

from __future__ import annotations

import math
from typing import Any

from modelgate.errors import InvalidRequestError

# Largest repetition count: maxLength, minLength, maxItems, minItems, maxProperties,
# minProperties, and each {n} / {m,n} quantifier of a pattern.
MAX_REPETITION = 1000
# Largest total expansion of one pattern: each atom counts once, times the counts of the
# quantifiers around it ((ab){10} counts 20; a{10}b{10} counts 20; (a{10}){10} counts 100).
MAX_PATTERN_EXPANSION = 4000
MAX_PATTERN_CHARS = 1000  # characters of one pattern
MAX_DEPTH = 32  # nesting of objects and arrays in the schema document
MAX_PROPERTIES = 100  # properties of one object schema
MAX_ENUM = 256  # enum values, and anyOf / oneOf / allOf / prefixItems alternatives, per schema
MAX_NODES = 5000  # values (objects, arrays, strings, numbers...) in the whole schema document
MAX_GRAMMAR_BYTES = 256 * 1024  # the GBNF grammar the schema converts to

_COUNTS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties")
_LISTS = ("enum", "anyOf", "oneOf", "allOf", "prefixItems")


class SchemaBoundError(InvalidRequestError):
    """A schema beyond one of the bounds; ``path`` is the JSON path of the field inside the schema."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(
            f"response_format.json_schema.schema{path}: {what}",
            param=f"response_format.json_schema.schema{path}",
            code="schema_too_complex",
        )
        self.path = path


def check_schema(schema: Any) -> None:
    """Raise ``SchemaBoundError`` if ``schema`` goes beyond a bound (iterative: no recursion)."""
    nodes = 0
    stack: list[tuple[str, Any, int]] = [("", schema, 1)]
    while stack:
        path, node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise SchemaBoundError("", f"more than {MAX_NODES} values in the schema; the local model's bound")
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                raise SchemaBoundError(
                    path, f"nested deeper than {MAX_DEPTH} levels, the local model's bound"
                )
            _check_keywords(path, node)
            for key, value in node.items():
                stack.append((f"{path}.{key}" if _plain(key) else f"{path}[{key!r}]", value, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                raise SchemaBoundError(
                    path, f"nested deeper than {MAX_DEPTH} levels, the local model's bound"
                )
            for i, value in enumerate(node):
                stack.append((f"{path}[{i}]", value, depth + 1))


def check_grammar(grammar: str) -> None:
    size = len(grammar.encode())
    if size > MAX_GRAMMAR_BYTES:
        raise SchemaBoundError(
            "",
            f"the schema converts to a grammar of {size} bytes; the local model's bound is "
            f"{MAX_GRAMMAR_BYTES} (fewer properties, alternatives or shorter length limits)",
        )


def _check_keywords(path: str, node: dict[str, Any]) -> None:
    for key in _COUNTS:
        if key in node:
            _check_count(f"{path}.{key}", node[key], MAX_REPETITION)
    for key in _LISTS:
        value = node.get(key)
        if isinstance(value, list) and len(value) > MAX_ENUM:
            raise SchemaBoundError(
                f"{path}.{key}", f"{len(value)} entries; the local model allows at most {MAX_ENUM}"
            )
    props = node.get("properties")
    if isinstance(props, dict) and len(props) > MAX_PROPERTIES:
        raise SchemaBoundError(
            f"{path}.properties",
            f"{len(props)} properties; the local model allows at most {MAX_PROPERTIES} per object",
        )
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        _check_pattern(f"{path}.pattern", pattern)
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        # The converter would fetch a remote reference over the network: never from a request.
        raise SchemaBoundError(f"{path}.$ref", "only local references (starting with '#') are supported")


def _check_count(path: str, value: Any, bound: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaBoundError(path, f"must be an integer between 0 and {bound}")
    if not (math.isfinite(value) and value == int(value) and 0 <= value <= bound):
        raise SchemaBoundError(
            path, f"{value} is beyond the local model's bound: an integer between 0 and {bound}"
        )


def _check_pattern(path: str, pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise SchemaBoundError(
            path, f"{len(pattern)} characters; the local model allows at most {MAX_PATTERN_CHARS}"
        )
    expansion = _pattern_expansion(path, pattern)
    if expansion > MAX_PATTERN_EXPANSION:
        raise SchemaBoundError(
            path,
            f"its quantifiers expand to {expansion} atoms; the local model allows at most"
            f" {MAX_PATTERN_EXPANSION}",
        )


def _pattern_expansion(path: str, pattern: str) -> int:
    """Atoms of the pattern once every ``{m,n}`` quantifier is unrolled (``*``, ``+``, ``?`` do
    not unroll). Quantifier counts above ``MAX_REPETITION`` are refused on their own."""
    groups: list[int] = [0]  # expansion of each open group so far
    last = 0  # expansion of the atom a quantifier would apply to
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            groups[-1] += 1
            last = 1
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            groups[-1] += 1
            last = 1
            continue
        if c == "(":
            groups.append(0)
            i += 1
            if pattern.startswith("?:", i):
                i += 2
            last = 0
            continue
        if c == ")":
            inner = groups.pop() if len(groups) > 1 else 0
            groups[-1] += inner
            last = inner
            i += 1
            continue
        if c == "{":
            j = pattern.find("}", i)
            body = pattern[i + 1 : j] if j > 0 else ""
            parts = body.split(",")
            if j > 0 and len(parts) <= 2 and all(p.strip().isdigit() or p.strip() == "" for p in parts):
                counts = [int(p) if p.strip() else 0 for p in parts]  # {,n} is {0,n}
                for count in counts:
                    if count > MAX_REPETITION:
                        raise SchemaBoundError(
                            path,
                            f"quantifier {{{body}}}: {count} is beyond the local model's bound of"
                            f" {MAX_REPETITION}",
                        )
                if len(parts) == 1:
                    times = counts[0]  # {n}
                elif parts[1].strip():
                    times = max(counts)  # {m,n}
                else:
                    times = counts[0] + 1  # {m,}: m copies, then a star
                groups[-1] += last * (times - 1)
                last *= times
                i = j + 1
                continue
        if c in "^$|":  # anchors and alternation: nothing to expand
            last = 0
        else:
            groups[-1] += 1
            last = 1
        i += 1
    return sum(groups)


def _plain(key: str) -> bool:
    return key.replace("_", "a").replace("-", "a").replace("$", "a").isalnum()
