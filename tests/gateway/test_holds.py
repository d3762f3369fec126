"""What a hold knows beyond the request (gateway/holds.py): the prompt-cache record and the output
hold policy."""

from __future__ import annotations

from typing import Any

from modelgate.doors.messages.estimate import prompt_bound
from modelgate.doors.messages.wire import MessagesRequest
from modelgate.gateway.holds import CachePrefix, CacheRecord, HoldPolicy
from modelgate.providers.base import Usage

SYSTEM = "You are a coding agent. " * 40
WRITE = Usage(prompt_tokens=900, cache_write_5m_tokens=900)


def _prefix(messages: list[Any], *, system: str = SYSTEM, ttl: str | None = None) -> CachePrefix:
    cc: dict[str, Any] = {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}
    body = {
        "model": "m",
        "max_tokens": 10,
        "system": [{"type": "text", "text": system, "cache_control": cc}],
        "messages": messages,
    }
    prefix = prompt_bound(MessagesRequest.model_validate(body)).prefix
    assert prefix is not None
    return prefix


def _marked_last(messages: list[Any], ttl: str = "5m") -> list[Any]:
    last = messages[-1]
    block = {"type": "text", "text": last["content"], "cache_control": {"type": "ephemeral", "ttl": ttl}}
    return [*messages[:-1], {"role": last["role"], "content": [block]}]


HISTORY = [
    {"role": "user", "content": "read main.py"},
    {"role": "assistant", "content": "it prints hello"},
    {"role": "user", "content": "now add tests"},
]


def test_a_written_prefix_is_known_with_the_upstreams_count_and_a_moved_marker() -> None:
    record = CacheRecord()
    first = _prefix(_marked_last(HISTORY[:1]))
    record.note(7, "anth", "m", first, WRITE, 0.0)
    later = _prefix(_marked_last(HISTORY))  # the marker moved to the newest message
    estimate, tokens = record.known(7, "anth", "m", later, 10.0)
    assert tokens == 900  # the upstream's count of what it cached, not the estimate
    assert estimate == first.points[first.last][1]
    # ...the system prompt alone (an earlier breakpoint) is known at its estimate scaled alike
    system_only = _prefix([{"role": "user", "content": "something else"}])
    estimate, tokens = record.known(7, "anth", "m", system_only, 10.0)
    assert 0 < tokens < 900 and estimate == system_only.points[0][1]


def test_unknown_for_another_account_route_model_or_content() -> None:
    record = CacheRecord()
    record.note(7, "anth", "m", _prefix(_marked_last(HISTORY[:1])), WRITE, 0.0)
    later = _prefix(_marked_last(HISTORY))
    assert record.known(8, "anth", "m", later, 1.0) == (0, 0)
    assert record.known(7, "other", "m", later, 1.0) == (0, 0)
    assert record.known(7, "anth", "m2", later, 1.0) == (0, 0)
    edited = _prefix(_marked_last(HISTORY), system=SYSTEM + "!")  # the system prompt changed
    assert record.known(7, "anth", "m", edited, 1.0) == (0, 0)
    # Not cached by the upstream (a prompt below its minimum): nothing recorded.
    record.note(9, "anth", "m", later, Usage(prompt_tokens=900), 0.0)
    assert record.known(9, "anth", "m", later, 1.0) == (0, 0)


def test_lifetimes_five_minutes_one_hour_and_a_read_refreshes() -> None:
    record = CacheRecord()
    five = _prefix(_marked_last(HISTORY[:1]))
    record.note(1, "anth", "m", five, WRITE, 0.0)
    later = _prefix(_marked_last(HISTORY))
    assert record.known(1, "anth", "m", later, 299.0)[1] == 900
    assert record.known(1, "anth", "m", later, 300.0) == (0, 0)
    hour = _prefix(_marked_last(HISTORY[:1], ttl="1h"), ttl="1h")
    record.note(2, "anth", "m", hour, WRITE, 0.0)
    assert record.known(2, "anth", "m", later, 3_599.0)[1] == 900
    assert record.known(2, "anth", "m", later, 3_600.0) == (0, 0)
    # Each breakpoint keeps its own lifetime: the system prompt's 1 hour outlives the message's 5 min.
    mixed = _prefix(_marked_last(HISTORY[:1]), ttl="1h")
    record.note(3, "anth", "m", mixed, WRITE, 0.0)
    assert record.known(3, "anth", "m", later, 299.0)[1] == 900
    assert 0 < record.known(3, "anth", "m", later, 300.0)[1] < 900
    # A read at 200 s (the marker elsewhere now) starts a 5-minute prefix's lifetime over.
    record.note(1, "anth", "m", five, WRITE, 0.0)
    read = Usage(prompt_tokens=950, cached_tokens=900, cache_write_5m_tokens=50)
    record.note(1, "anth", "m", later, read, 200.0)
    other = _prefix(_marked_last([*HISTORY[:1], {"role": "assistant", "content": "x"}]))
    assert record.known(1, "anth", "m", other, 450.0)[1] == 900  # 200 + 300 > 450


def test_the_record_is_bounded() -> None:
    record = CacheRecord(max_entries=50)
    for account in range(200):
        record.note(account, "anth", "m", _prefix(_marked_last(HISTORY[:1])), WRITE, 0.0)
    assert record._size <= 50
    assert record.known(199, "anth", "m", _prefix(_marked_last(HISTORY)), 1.0)[1] == 900


def test_output_hold_policy() -> None:
    policy = HoldPolicy(output_floor=1024)
    assert policy.output(1, "m", 32_000) == 32_000  # nothing known: all of max_tokens
    policy.settled(1, "anth", "m", Usage(completion_tokens=300), choices=1, prefix=None, at=0.0)
    assert policy.output(1, "m", 32_000) == 1024  # the floor
    assert policy.output(1, "m", 800) == 800  # never more than max_tokens
    assert policy.output(2, "m", 32_000) == 32_000  # another account knows nothing
    policy.settled(1, "anth", "m", Usage(completion_tokens=6_000), choices=2, prefix=None, at=0.0)
    assert policy.output(1, "m", 32_000) == 6_000  # twice the longest answer per choice
    for _ in range(16):  # the last 16 answers only
        policy.settled(1, "anth", "m", Usage(completion_tokens=100), choices=1, prefix=None, at=0.0)
    assert policy.output(1, "m", 32_000) == 1024
    off = HoldPolicy(output_floor=0)
    off.settled(1, "anth", "m", Usage(completion_tokens=10), choices=1, prefix=None, at=0.0)
    assert off.output(1, "m", 32_000) == 32_000
