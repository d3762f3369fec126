"""Cached answers as bytes and back: a whole answer (``Whole``) or a stream's events (``Piece``s), for the
payload types the doors cache — chat ``Completion``/``Chunk``, pass-through ``RawReply``/``RawEvent``
(Messages, Responses) and ``Embeddings``. Anything else is not cached (``encode`` answers None).

JSON (orjson) with a type tag per payload; bytes as latin-1 text (lossless). Decoding a stored
entry that does not parse is a miss, never an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from modelgate.providers.base import Chunk, Completion, Embeddings, RawEvent, RawReply, Usage

_USAGE_FIELDS = frozenset(f.name for f in dataclasses.fields(Usage))


@dataclass(slots=True)
class Whole:
    """A whole answer (the core's ``Outcome``, by its fields)."""

    payload: Any
    usage: Usage
    finish: str | None = None


@dataclass(slots=True)
class Piece:
    """One streamed event (the core's ``Event``, by its fields)."""

    payload: Any
    usage: Usage | None = None
    finish: str | None = None
    output: bool = True


class _Answer(Protocol):
    payload: Any
    finish: str | None


class _Event(_Answer, Protocol):
    usage: Usage | None
    output: bool


def _usage(u: Usage | None) -> dict[str, Any] | None:
    return None if u is None else dataclasses.asdict(u)


def _payload(p: Any) -> dict[str, Any] | None:
    if isinstance(p, Completion):
        return {
            "t": "completion",
            "choices": p.choices,
            "usage": _usage(p.usage),
            "upstream_id": p.upstream_id,
            "system_fingerprint": p.system_fingerprint,
        }
    if isinstance(p, Chunk):
        return {"t": "chunk", "choices": p.choices, "usage": _usage(p.usage)}
    if isinstance(p, RawReply):
        return {"t": "reply", "body": p.body.decode("latin-1"), "usage": _usage(p.usage), "finish": p.finish}
    if isinstance(p, RawEvent):
        return {
            "t": "event",
            "frame": p.frame.decode("latin-1"),
            "kind": p.kind,
            "usage": _usage(p.usage),
            "finish": p.finish,
            "output": p.output,
        }
    if isinstance(p, Embeddings):
        return {"t": "embeddings", "vectors": p.vectors, "prompt_tokens": p.prompt_tokens}
    return None


def _read_usage(d: Any) -> Usage | None:
    if not isinstance(d, dict):
        return None
    return Usage(**{k: v for k, v in d.items() if k in _USAGE_FIELDS})


def _read_payload(d: dict[str, Any]) -> Any:
    t = d["t"]
    if t == "completion":
        return Completion(
            choices=d["choices"],
            usage=_read_usage(d["usage"]) or Usage(),
            upstream_id=d.get("upstream_id"),
            system_fingerprint=d.get("system_fingerprint"),
        )
    if t == "chunk":
        return Chunk(choices=d["choices"], usage=_read_usage(d["usage"]))
    if t == "reply":
        return RawReply(d["body"].encode("latin-1"), _read_usage(d["usage"]) or Usage(), d.get("finish"))
    if t == "event":
        return RawEvent(
            d["frame"].encode("latin-1"),
            kind=d.get("kind"),
            usage=_read_usage(d["usage"]),
            finish=d.get("finish"),
            output=bool(d.get("output")),
        )
    if t == "embeddings":
        return Embeddings(vectors=d["vectors"], prompt_tokens=int(d["prompt_tokens"]))
    raise ValueError(t)


def encode_whole(payload: Any, usage: Usage, finish: str | None) -> bytes | None:
    data = _payload(payload)
    if data is None:
        return None
    return orjson.dumps({"whole": data, "usage": _usage(usage), "finish": finish})


def encode_events(events: Sequence[_Event]) -> bytes | None:
    out = []
    for e in events:
        payload = _payload(e.payload)
        if payload is None:
            return None
        out.append({"p": payload, "usage": _usage(e.usage), "finish": e.finish, "output": e.output})
    return orjson.dumps({"events": out})


def decode(data: bytes) -> Whole | list[Piece] | None:
    """A stored entry: a whole answer, a stream's events, or None when it cannot be read."""
    try:
        d = orjson.loads(data)
        if "whole" in d:
            return Whole(_read_payload(d["whole"]), _read_usage(d["usage"]) or Usage(), d.get("finish"))
        return [
            Piece(_read_payload(e["p"]), _read_usage(e["usage"]), e.get("finish"), bool(e.get("output")))
            for e in d["events"]
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
