"""Request/inference ids: 26 base32hex digits, unique, ordered by time."""

from __future__ import annotations

import base64
import time

from modelgate.httpkit.errors import new_request_id


def test_ids_are_base32hex_of_milliseconds_then_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    rid = new_request_id()
    after = time.time_ns() // 1_000_000
    assert len(rid) == 26 and set(rid) <= set("0123456789abcdefghijklmnopqrstuv")
    raw = base64.b32hexdecode(rid.upper() + "======")
    assert len(raw) == 16
    assert before <= int.from_bytes(raw[:6], "big") <= after
    # the same text the standard library's encoder gives for those bytes
    assert base64.b32hexencode(raw).decode().rstrip("=").lower() == rid


def test_ids_are_unique_and_sort_by_time() -> None:
    first = [new_request_id() for _ in range(5000)]
    time.sleep(0.002)
    later = new_request_id()
    assert len(set(first)) == len(first)
    assert all(rid < later for rid in first)
