"""The values an upstream reports, checked at the provider boundary before anything is billed or stored.

- Token counts are JSON integers in ``[0, MAX_TOKEN_COUNT]`` (an integral float is accepted); anything
  else — negative, fractional, non-numeric, absurdly large — makes the answer invalid
  (``UpstreamProtocolError``, 502): never a free request, never a row the database refuses.
- ``finish_reason`` is one of the documented values (``stop``, ``length``, ``tool_calls``,
  ``content_filter``, ``function_call``); other provider vocabularies are mapped, anything unknown
  becomes ``stop``.

Adapters parse with ``token_count``; the router runs every ``Completion`` and ``Chunk`` through
``checked_completion`` / ``checked_chunk`` as well, so a third-party adapter cannot bypass the rules.
"""

from __future__ import annotations

from typing import Any

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.base import Chunk, Completion, Usage

MAX_TOKEN_COUNT = 2**31 - 1  # fits every token column (int32 on PostgreSQL)

FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
_FINISH_ALIASES = {
    "max_tokens": "length",
    "max_output_tokens": "length",
    "model_length": "length",
    "tool_use": "tool_calls",
    "tool_call": "tool_calls",
    "function_calls": "tool_calls",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "safety": "content_filter",
    "refusal": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "recitation": "content_filter",
}


def token_count(raw: Any, *, provider: str, field: str) -> int:
    """One token count from an upstream: absent/null is 0, anything else must be a bounded
    non-negative integer."""
    if raw.__class__ is int and 0 <= raw <= MAX_TOKEN_COUNT:  # the common case, first (not a bool)
        return raw
    if raw is None:
        return 0
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    if value is None or value < 0 or value > MAX_TOKEN_COUNT:
        shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:40] + "…"
        raise UpstreamProtocolError(
            f"upstream {provider} reported an invalid token count ({field}: {shown})", provider=provider
        )
    return value


def checked_usage(usage: Usage, *, provider: str) -> Usage:
    """``usage`` with every count checked (sums of valid counts can still overflow the bound)."""
    token_count(usage.prompt_tokens, provider=provider, field="prompt_tokens")
    token_count(usage.completion_tokens, provider=provider, field="completion_tokens")
    token_count(usage.reasoning_tokens, provider=provider, field="reasoning_tokens")
    token_count(usage.cached_tokens, provider=provider, field="cached_tokens")
    return usage


def finish_reason(raw: Any, *, default: str | None = "stop") -> str | None:
    """A documented ``finish_reason`` for whatever the upstream said (None/empty: ``default``)."""
    if raw.__class__ is str and raw in FINISH_REASONS:  # the common case, first
        return raw
    if raw is None or raw == "":
        return default
    if isinstance(raw, str):
        key = raw.strip().lower()
        if key in FINISH_REASONS:
            return key
        return _FINISH_ALIASES.get(key, "stop")
    return "stop"


def _checked_choices(choices: Any, *, provider: str, stream: bool) -> list[dict[str, Any]]:
    if not isinstance(choices, list):
        raise UpstreamProtocolError(
            f"upstream {provider} answered choices that are not a list", provider=provider
        )
    out: list[dict[str, Any]] = []
    for choice in choices:
        if not isinstance(choice, dict):
            raise UpstreamProtocolError(
                f"upstream {provider} answered a choice that is not an object", provider=provider
            )
        reason = choice.get("finish_reason")
        fixed = finish_reason(reason, default=None if stream else "stop")
        out.append(choice if fixed == reason else {**choice, "finish_reason": fixed})
    return out


def checked_completion(result: Completion, *, provider: str) -> Completion:
    result.choices = _checked_choices(result.choices, provider=provider, stream=False)
    result.usage = checked_usage(result.usage, provider=provider)
    return result


def checked_chunk(chunk: Chunk, *, provider: str) -> Chunk:
    # The common chunk first: choices that are objects with a documented finish (or none) pass as
    # they are, the list not copied (_checked_choices's answer for them, without its calls).
    choices = chunk.choices
    common = choices.__class__ is list
    if common:
        for c in choices:
            if c.__class__ is not dict:
                common = False
                break
            r = c.get("finish_reason")
            if r is not None and not (r.__class__ is str and r in FINISH_REASONS):
                common = False
                break
    if not common:
        chunk.choices = _checked_choices(choices, provider=provider, stream=True)
    if chunk.usage is not None:
        chunk.usage = checked_usage(chunk.usage, provider=provider)
    return chunk
