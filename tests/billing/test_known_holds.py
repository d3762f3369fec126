"""Holds that use what the gateway knows, through a live server and the Messages door (SQLite and
PostgreSQL): the prefix an account had written to the prompt cache moments ago is held as a read,
the output at twice the account's longest recent answer (at least MODELGATE_HOLD_OUTPUT_TOKENS), and
a request that costs more than that hold is charged in full, its overage within the stated bound.

Turn 1 (nothing known: the dearest hold; max_tokens 200) writes a 1-hour cache of the system
prompt. Turn 2 (max_tokens 32,000), with a balance that covers exactly its learned hold and not a
tenth of the dearest one, is admitted (it was refused before: 402) and produces 3,000 output tokens
where 1,024 were held: charged whole, the balance below zero by exactly its overage, which is at
most (3,000 - 1,024) output tokens' price. Turn 3 is refused until a top-up. charged == logged ==
balance delta throughout.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from modelgate.catalog.prices import PriceSheet
from modelgate.doors.messages.estimate import prompt_bound
from modelgate.doors.messages.wire import MessagesRequest
from modelgate.gateway.holds import DEFAULT_HOLD_OUTPUT_TOKENS, CacheRecord
from modelgate.providers.base import Usage
from tests.billing.helpers import account_state, all_logs, assert_books_balance, wait_for
from tests.conftest import ANTHROPIC_KEY, MOCK_CONFIG
from tests.fakes import Reply
from tests.fakes.anthropic_server import AnthropicFake

CREDITS_PER_USD = 2_000_000
PRICING = {
    "input_usd_per_mtok": 4,
    "output_usd_per_mtok": 20,
    "cached_input_usd_per_mtok": 0.2,
    "cache_write_5m_usd_per_mtok": 5,
    "cache_write_1h_usd_per_mtok": 8,
}
SHEET = PriceSheet.model_validate(PRICING)
MODEL = """
  - id: anthropic/claude-known
    info: {{name: Claude known, developer: Anthropic, contextLength: 200000, outputMax: 64000}}
    pricing: {pricing}
    routes:
      - {{provider: anth, model: claude-known-upstream}}
"""
CC = {"type": "ephemeral", "ttl": "1h"}
SYSTEM = [{"type": "text", "text": "You are a careful coding agent. " * 150, "cache_control": CC}]
TURN1: dict[str, Any] = {
    "model": "anthropic/claude-known",
    "max_tokens": 200,
    "system": SYSTEM,
    "messages": [{"role": "user", "content": "Read the file."}],
}
TURN2: dict[str, Any] = {
    **TURN1,
    "max_tokens": 32_000,
    "messages": [
        {"role": "user", "content": "Read the file."},
        {"role": "assistant", "content": "It says hello."},
        {"role": "user", "content": [{"type": "text", "text": "Now rewrite it.", "cache_control": CC}]},
    ],
}
P1 = 1_210  # the upstream's count of turn 1's prompt (all of it the cached system prompt, say)
OUT1, OUT2 = 100, 3_000


def _config(base: str, anthropic_url: str) -> str:
    anth = f"  anth:\n    type: anthropic\n    base_url: {anthropic_url}\n    api_key: {ANTHROPIC_KEY}\n"
    anth += "    max_retries: 0\n"
    mock = MOCK_CONFIG.format(base_url=base).replace("providers:\n", "providers:\n" + anth, 1)
    return mock + MODEL.format(pricing=json.dumps(PRICING))


def _reply(*, read: int, write: int, fresh: int, output: int) -> Reply:
    usage = {
        "input_tokens": fresh,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": write},
        "output_tokens": output,
    }
    body = {
        "id": "msg_known",
        "type": "message",
        "role": "assistant",
        "model": "claude-known-upstream",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    return Reply(body=body)


def _post(server: Any, key: str, body: dict[str, Any]) -> requests.Response:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return requests.post(f"{server.url}/v1/messages", json=body, headers=headers, timeout=30)


def test_known_prefix_and_output_hold_with_the_overdraft_bound(
    make_live_server: Any, openai_upstream: Any, anthropic_up: AnthropicFake
) -> None:
    b1 = prompt_bound(MessagesRequest.model_validate(TURN1))
    b2 = prompt_bound(MessagesRequest.model_validate(TURN2))
    assert b1.prefix is not None and b2.prefix is not None
    dearest1 = SHEET.hold(prompt_tokens=b1.tokens, output_tokens=200, cache_write="1h")
    charge1 = SHEET.cost(Usage(prompt_tokens=P1, completion_tokens=OUT1, cache_write_1h_tokens=P1))
    # What the gateway learns from turn 1: the system prompt cached (P1 tokens), answers of 100.
    record = CacheRecord()
    record.note(1, "anth", "m", b1.prefix, Usage(prompt_tokens=P1, cache_write_1h_tokens=P1), 0.0)
    estimated, read = record.known(1, "anth", "m", b2.prefix, 1.0)
    assert read == P1 and 0 < estimated < b2.tokens
    prompt2 = b2.tokens - estimated + read
    held_output = max(DEFAULT_HOLD_OUTPUT_TOKENS, 2 * OUT1)
    hold2 = SHEET.hold(prompt_tokens=prompt2, output_tokens=held_output, cache_write="1h", cached_tokens=read)
    dearest2 = SHEET.hold(prompt_tokens=b2.tokens, output_tokens=32_000, cache_write="1h")
    assert dearest2 > 10 * hold2  # without what is known, turn 2 could not be admitted
    fresh2 = 40  # the upstream's count of what turn 2 adds (below the estimate of it)
    assert b2.tokens - estimated >= fresh2
    usage2 = Usage(
        prompt_tokens=P1 + fresh2, completion_tokens=OUT2, cached_tokens=P1, cache_write_1h_tokens=fresh2
    )
    charge2 = SHEET.cost(usage2)
    overage = charge2 - hold2
    # The stated bound: the output beyond the held output at the output price (the prompt was held
    # above its real cost).
    bound = SHEET.hold(prompt_tokens=0, output_tokens=OUT2 - held_output)
    assert 0 < overage <= bound

    server = make_live_server(_config(openai_upstream.base_url, anthropic_up.base_url))
    email = "known@example.com"
    initial = charge1 + hold2  # turn 1's dearest hold, then exactly turn 2's learned hold
    assert initial >= dearest1 and initial - charge1 < dearest2
    key = server.create_key(email=email, usd=initial / CREDITS_PER_USD)
    anthropic_up.add(
        _reply(read=0, write=P1, fresh=0, output=OUT1),
        _reply(read=P1, write=fresh2, fresh=0, output=OUT2),
    )
    r1 = _post(server, key, TURN1)
    assert r1.status_code == 200, r1.text
    wait_for(lambda: account_state(server, email)["charges"] == 1)
    assert account_state(server, email)["balance"] == hold2  # not a tenth of the dearest hold
    r2 = _post(server, key, TURN2)
    assert r2.status_code == 200, r2.text
    wait_for(lambda: account_state(server, email)["charges"] == 2)
    state = account_state(server, email)
    assert state["charged"] == charge1 + charge2  # the whole cost, beyond the hold
    assert state["balance"] == initial - charge1 - charge2
    assert -state["balance"] <= bound  # below zero by at most this request's overage
    rows = {row["tokens"]["output"]: row for row in all_logs(server, key)}
    assert rows[OUT2]["overage"]["credits"] == overage and rows[OUT1]["overage"]["credits"] == 0
    r3 = _post(server, key, TURN2)  # refused until a top-up
    assert r3.status_code in (402, 403), r3.text
    assert_books_balance(server, email, key, initial_credits=initial, requests_made=3, overdraft=overage)
