"""Holds on a Claude-Code-shaped session: upper bounds of the prompt, and how far above the charge.

The session (recorded shapes, sizes as Claude Code 2.1 sends them): three system blocks and 18
tools with JSON schemas, the last of each marked ``cache_control`` with a 1-hour lifetime; a history
that grows by a tool_use and a tool_result (file contents, command output) each turn, its last block
marked too; ``max_tokens`` 32,000; Claude Opus 5.5, the model Claude Code asks for by default. The
upstream's usage per turn: the previous turn's prompt read from the cache, the rest written with a
1-hour lifetime, 200-1,200 output tokens; the true prompt size taken at Anthropic's rule of thumb of
3.5 characters a token (no Claude vocabulary is published).

Each turn is held as admission holds it (``gateway/holds.py``): the prefix the previous turn had
written held as a cache read of the upstream's count, the rest at the 1-hour write price, the output
at twice the longest recent answer (at least 1,024 tokens) instead of the 32,000 asked for; a hold
below the charge only by output beyond what was held (the overdraft rule's stated bound).

Printed (``pytest -s``): per turn the prompt estimate against the true count, the prefix held as a
read, output produced / held, the hold, the charge, the ratio and the dearest case's ratio.
"""

from __future__ import annotations

import statistics
from typing import Any

import orjson

from modelgate.catalog.loader import load_catalog_files
from modelgate.catalog.prices import MICRO
from modelgate.doors.messages.estimate import prompt_bound, tally
from modelgate.doors.messages.wire import MessagesRequest
from modelgate.gateway.holds import HoldPolicy
from modelgate.providers.base import Usage

TURNS = 30
MAX_TOKENS = 32_000
CC = {"type": "ephemeral", "ttl": "1h"}


def _words(n: int, seed: int) -> str:
    vocab = ["the", "file", "function", "return", "value", "config", "test", "error", "import", "class"]
    vocab += ["def", "self", "request", "response", "async", "await", "path", "line", "update", "check"]
    out = []
    x = seed
    while sum(len(w) + 1 for w in out) < n:
        x = (x * 1103515245 + 12345) % 2**31
        out.append(vocab[x % len(vocab)])
    return " ".join(out)[:n]


def _tool(i: int) -> dict[str, Any]:
    props = {f"param_{j}": {"type": "string", "description": _words(160, i * 31 + j)} for j in range(8)}
    return {
        "name": f"Tool{i}",
        "description": _words(900, i),
        "input_schema": {"type": "object", "properties": props, "required": ["param_0"]},
    }


def _session() -> list[dict[str, Any]]:
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": _words(12_000, 1)},
        {"type": "text", "text": _words(1_000, 2), "cache_control": CC},
    ]
    tools = [_tool(i) for i in range(18)]
    tools[-1] = {**tools[-1], "cache_control": CC}
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": _words(400, 3)}]}]
    bodies = []
    for turn in range(TURNS):
        marked = [dict(m) for m in messages]
        last = dict(marked[-1]["content"][-1])
        marked[-1] = {**marked[-1], "content": [*marked[-1]["content"][:-1], {**last, "cache_control": CC}]}
        bodies.append(
            {
                "model": "claude-opus-5-5",
                "max_tokens": MAX_TOKENS,
                "system": system,
                "tools": tools,
                "messages": marked,
            }
        )
        call = {
            "type": "tool_use",
            "id": f"toolu_{turn}",
            "name": "Tool1",
            "input": {"param_0": _words(120, turn)},
        }
        size = 1_500 + (turn * 1_337) % 4_500
        result = {"type": "tool_result", "tool_use_id": f"toolu_{turn}", "content": _words(size, 100 + turn)}
        messages += [{"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]
    return bodies


def _true_tokens(body: dict[str, Any]) -> int:
    t = tally(MessagesRequest.model_validate(body))
    return round(t.text_chars / 3.5) + 4 * (t.messages + 1)


def _turn(turn: int, previous: int, true: int) -> Usage:
    """The upstream's usage: the previous prompt read from the cache, the rest written for 1 hour."""
    output = 200 + (turn * 389) % 1_000
    return Usage(
        prompt_tokens=true,
        completion_tokens=output,
        cached_tokens=previous,
        cache_write_1h_tokens=true - previous,
    )


def test_claude_code_session_holds() -> None:
    _, models = load_catalog_files(None, env={})
    opus = next(m for m in models if m.id == "anthropic/claude-opus-5.5")
    sheet, context = opus.pricing, opus.context_length
    assert context is not None
    policy = HoldPolicy()  # the defaults: output floor 1,024, margin x2, the prompt-cache record
    previous, now = 0, 1_000.0
    ratios, dearest_ratios, byte_ratios, overages = [], [], [], []
    for turn, body in enumerate(_session()):
        req = MessagesRequest.model_validate(body)
        bound = prompt_bound(req)
        true = _true_tokens(body)
        assert bound.tokens >= true  # an upper bound of the prompt
        assert bound.cache_write == "1h" and bound.prefix is not None
        usage = _turn(turn, previous, true)
        charge = sheet.cost(usage)
        # The dearest case, from the request alone: an upper bound of every turn's charge.
        dearest = sheet.hold(
            prompt_tokens=min(bound.tokens, context), output_tokens=MAX_TOKENS, cache_write="1h"
        )
        assert dearest >= charge
        # What admission holds (gateway/admission.py): the recorded prefix as a read, the output
        # at twice the longest recent answer.
        prompt, read = policy.prompt(1, "anthropic", opus.id, bound.tokens, bound.prefix, now)
        held_output = policy.output(1, opus.id, MAX_TOKENS)
        hold = sheet.hold(
            prompt_tokens=min(prompt, context),
            output_tokens=held_output,
            cache_write="1h",
            cached_tokens=read,
        )
        if turn:
            assert read == previous  # the previous turn's prompt, recorded with the upstream's count
        # A hold below the charge: only by output beyond what was held (the stated bound).
        rate = sheet.rates_for(true)
        bound_micro = max(usage.completion_tokens - held_output, 0) * rate.output
        assert (charge - hold) * MICRO <= bound_micro + MICRO
        overages.append(max(charge - hold, 0))
        ratios.append(hold / charge)
        dearest_ratios.append(dearest / charge)
        byte_ratios.append(len(orjson.dumps(body)) / true)
        print(
            f"turn {turn:2d}: prompt {true:6d} est {bound.tokens:6d} read {read:6d} output"
            f" {usage.completion_tokens:5d}/{held_output:5d} hold {hold:7d} charge {charge:7d}"
            f" x{hold / charge:.2f} (dearest x{dearest / charge:.1f})"
        )
        policy.settled(1, "anthropic", opus.id, usage, choices=1, prefix=bound.prefix, at=now)
        previous, now = true, now + 60
    median = statistics.median(ratios)
    print(
        f"median hold/charge x{median:.2f} (dearest case x{statistics.median(dearest_ratios):.1f});"
        f" turns over their hold {sum(1 for o in overages if o)}/{TURNS};"
        f" bytes/true tokens x{statistics.median(byte_ratios):.2f}"
    )
    # The estimate is an upper bound within 1.5x of the true prompt (bytes were 3.5x)...
    assert (
        max(
            b.tokens / _true_tokens(s)
            for b, s in ((prompt_bound(MessagesRequest.model_validate(s)), s) for s in _session()[:3])
        )
        < 1.5
    )
    # ...and the holds are tight: the target, median <= 3x the charge (measured x2.13).
    assert median <= 3
    assert statistics.median(dearest_ratios) > 20  # what the request alone allows (x21.9)


def test_a_prefix_read_after_its_lifetime_is_held_as_a_write() -> None:
    """The record forgets a prefix at the end of the lifetime its marker asked for (1 hour here)."""
    bodies = _session()[:2]
    policy = HoldPolicy()
    first = prompt_bound(MessagesRequest.model_validate(bodies[0]))
    second = prompt_bound(MessagesRequest.model_validate(bodies[1]))
    assert first.prefix is not None and second.prefix is not None
    usage = Usage(prompt_tokens=5_000, cache_write_1h_tokens=5_000)
    policy.settled(1, "anthropic", "m", usage, choices=1, prefix=first.prefix, at=0.0)
    assert policy.prompt(1, "anthropic", "m", second.tokens, second.prefix, 3_599.0)[1] == 5_000
    assert policy.prompt(1, "anthropic", "m", second.tokens, second.prefix, 3_600.0) == (second.tokens, 0)
