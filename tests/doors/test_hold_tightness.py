"""Holds on a Claude-Code-shaped session: upper bounds of the prompt, and how far above the charge.

The session (recorded shapes, sizes as Claude Code 2.1 sends them): three system blocks and 18
tools with JSON schemas, the last of each marked ``cache_control`` with a 1-hour lifetime; a history
that grows by a tool_use and a tool_result (file contents, command output) each turn, its last block
marked too; ``max_tokens`` 32,000; Claude Opus 5.5, the model Claude Code asks for by default. The
upstream's usage per turn: the previous turn's prompt read from the cache, the rest written with a
1-hour lifetime, 200-1,200 output tokens; the true prompt size taken at Anthropic's rule of thumb of
3.5 characters a token (no Claude vocabulary is published).

Printed (``pytest -s``): per turn the prompt estimate against the true count, the hold, the charge.
"""

from __future__ import annotations

import statistics
from typing import Any

import orjson

from modelgate.catalog.loader import load_catalog_files
from modelgate.doors.messages.estimate import prompt_bound, tally
from modelgate.doors.messages.wire import MessagesRequest
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


def test_claude_code_session_holds() -> None:
    _, models = load_catalog_files(None, env={})
    opus = next(m for m in models if m.id == "anthropic/claude-opus-5.5")
    sheet, context = opus.pricing, opus.context_length
    assert context is not None
    previous = 0
    ratios, prompt_ratios, byte_ratios = [], [], []
    for turn, body in enumerate(_session()):
        req = MessagesRequest.model_validate(body)
        bound = prompt_bound(req)
        true = _true_tokens(body)
        assert bound.tokens >= true  # an upper bound of the prompt
        assert bound.cache_write == "1h"
        estimate = min(bound.tokens, context)
        hold = sheet.hold(prompt_tokens=estimate, output_tokens=MAX_TOKENS, cache_write=bound.cache_write)
        output = 200 + (turn * 389) % 1_000
        usage = Usage(
            prompt_tokens=true,
            completion_tokens=output,
            cached_tokens=previous,
            cache_write_1h_tokens=true - previous,
        )
        charge = sheet.cost(usage)
        assert hold >= charge  # the dearest case covers the real one
        prompt_hold = sheet.hold(prompt_tokens=estimate, output_tokens=0, cache_write="1h")
        prompt_charge = sheet.cost(
            Usage(prompt_tokens=true, cached_tokens=previous, cache_write_1h_tokens=true - previous)
        )
        ratios.append(hold / charge)
        prompt_ratios.append(prompt_hold / prompt_charge)
        byte_ratios.append(len(orjson.dumps(body)) / true)
        print(
            f"turn {turn:2d}: prompt {true:6d} est {bound.tokens:6d} hold {hold:8d}"
            f" charge {charge:7d} x{hold / charge:.1f}"
        )
        previous = true
    median, prompt_median = statistics.median(ratios), statistics.median(prompt_ratios)
    print(
        f"median hold/charge x{median:.2f}; prompt part x{prompt_median:.2f};"
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
    # ...and the hold, an upper bound, is dominated by what the request allows: 32,000 output
    # tokens held (~700 produced) and the prompt at the 1-hour write price (a prefix mostly read
    # at 1/40 of it). Measured: median x34.5 (prompt part x24.8); the x3 target needs
    # holds below the dearest case (docs/pricing.md, "Hold tightness"). A regression guard:
    assert median < 40
