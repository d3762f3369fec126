"""What a cached answer is keyed on, and when a request may be served from the cache.

The key is a SHA-256 of a canonical form of the request: the door, the model *after alias
resolution*, whether it streams, and the request body with every field that cannot change the
answer removed (``stream``, ``stream_options``, ``user``, ``metadata``, ``store`` …; never the API
key: it is not in the body), JSON with sorted keys. Entries are namespaced per account (per
organisation once accounts belong to one), so no tenant ever reads another's answers.

A semantic lookup splits the same form in two: the *prefix* (the system prompt, tools, parameters
and every earlier turn, which must match exactly, hashed) and the *last user turn* (compared by
similarity). Near misses must miss: a similarity threshold alone cannot tell "what is 2+2" from
"what is 2+3", or a sentence from its negation, so the two turns' *guard* — their numbers and
negation words — must also be equal.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson

CacheMode = Literal["off", "exact", "semantic"]
MODES: frozenset[str] = frozenset({"off", "exact", "semantic"})
MODE_HEADER = "x-modelgate-cache"
TTL_HEADER = "x-modelgate-cache-ttl"
MAX_TTL = 30 * 86400  # seconds

# Body fields that never change the answer (bookkeeping, transport, storage).
IGNORED = frozenset(
    {
        "model",
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "background",
    }
)

# Numbers, and the arithmetic between them ("2+2" is not "2*2").
_NUMBER = re.compile("\\d+(?:[.,]\\d+)*|(?<=\\d)\\s*[-+*/^\u00d7\u00f7]\\s*(?=\\d)")
_WORD = re.compile(r"[a-z']+")
_NAME = re.compile("[A-Za-z][\\w'\u2019]*")
_PRONOUNS = frozenset({"i", "i'm", "i'd", "i'll", "i've"})
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "isnt"}
)


@dataclass(slots=True, frozen=True)
class CacheAsk:
    """What a door offers the cache: the raw body, and where its turns are (``messages`` for chat
    and Messages, ``input`` for Responses; None: exact only, as for embeddings)."""

    body: bytes
    turns: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # protocol headers that change the answer (versions, betas)


@dataclass(slots=True, frozen=True)
class CacheKey:
    namespace: str
    key: str  # hex SHA-256 of the whole canonical form
    prefix: str | None = None  # hex SHA-256 of everything but the last user turn (semantic)
    last_turn: str | None = None  # the last user turn's text (semantic), never stored
    guard: str = ""  # its numbers and negations, which a semantic hit must share


def parse_mode(value: str | None) -> CacheMode | None:
    """The ``x-modelgate-cache`` header: None when absent; ValueError when not a mode."""
    if value is None:
        return None
    mode = value.strip().lower()
    if mode not in MODES:
        raise ValueError(f"{MODE_HEADER} must be off, exact or semantic; got {value[:40]!r}")
    return mode  # type: ignore[return-value]


def parse_ttl(value: str | None) -> int | None:
    """The ``x-modelgate-cache-ttl`` header in seconds (1 to 30 days): None when absent."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_TTL:
        raise ValueError(f"{TTL_HEADER} must be a whole number of seconds from 1 to {MAX_TTL}")
    return int(text)


def namespace_of(account_id: int) -> str:
    """An account's namespace (an account is its organisation: keys of its projects share it)."""
    return f"a{account_id}"


def cache_key(
    ask: CacheAsk, *, door: str, model: str, stream: bool, namespace: str, semantic: bool
) -> CacheKey | None:
    """The key of a request (None: its body is not a JSON object, so nothing is cached)."""
    try:
        body = orjson.loads(ask.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    form = {k: v for k, v in body.items() if k not in IGNORED}
    head = [door, model, stream, list(ask.headers)]
    key = _digest([*head, form])
    if not semantic or ask.turns is None:
        return CacheKey(namespace, key)
    split = split_last_turn(form, ask.turns)
    if split is None:
        return CacheKey(namespace, key)
    rest, text = split
    return CacheKey(namespace, key, prefix=_digest([*head, rest]), last_turn=text, guard=guard_of(text))


def split_last_turn(form: dict[str, Any], field: str) -> tuple[dict[str, Any], str] | None:
    """(the form without its last user turn's text, that text), when the request ends with a user
    turn whose content is text; else None (an exact lookup only)."""
    turns = form.get(field)
    if isinstance(turns, str) and field == "input":
        return {**form, field: None}, turns
    if not isinstance(turns, list) or not turns or not isinstance(turns[-1], dict):
        return None
    last = turns[-1]
    if last.get("role") != "user" or last.get("type", "message") != "message":
        return None
    text = _text_of(last.get("content"))
    if text is None:
        return None
    rest_last = {k: v for k, v in last.items() if k != "content"}
    return {**form, field: [*turns[:-1], rest_last]}, text


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in ("text", "input_text"):
            return None  # an image, a file, a tool result: only exact matches
        if set(part) - {"type", "text"}:
            return None  # cache_control and the like: exact only
        texts.append(str(part.get("text", "")))
    return "\n".join(texts)


def guard_of(text: str) -> str:
    """What two similar turns must share to be the same question: their numbers (in order) and
    their negations (a count of each)."""
    lower = text.lower().replace("n't", " not").replace("\u2019", "'")
    numbers = [n.strip() for n in _NUMBER.findall(lower)]
    negations = sorted(w for w in _WORD.findall(lower) if w in NEGATIONS)
    return " ".join(numbers) + "|" + " ".join(negations) + "|" + " ".join(_names(text))


def _names(text: str) -> list[str]:
    """Capitalised words not opening a sentence (names: "France" is not "Germany"), possessives
    stripped, sorted and unique."""
    names: set[str] = set()
    for sentence in _SENTENCE.split(text):
        for word in _NAME.findall(sentence)[1:] if sentence[:1].isupper() else _NAME.findall(sentence):
            if word[:1].isupper() and word.lower() not in _PRONOUNS:
                names.add(word.removesuffix("'s").removesuffix("\u2019s").lower())
    return sorted(names)


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()
