"""validate_body's guard for integers beyond 64 bits: the quick scan that decides whether the body is
walked at all must find exactly what the regex ``\\d{19}`` finds (it looks at every 9th byte first,
then at the bytes around each pair of digits found there)."""

from __future__ import annotations

import random
import re

import pytest

from modelgate.errors import InvalidRequestError
from modelgate.httpkit.errors import has_long_digit_run, validate_body
from modelgate.wire.chat import ChatRequest

REFERENCE = re.compile(rb"\d{19}")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"1" * 18,
        b"1" * 19,
        b"x" + b"9" * 19 + b"x",
        b"123456789 1234567890",
        b'{"n": 12345678901234567890}',
        b'{"n": -9223372036854775809}',
        "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩".encode(),  # non-ASCII digits: not JSON numbers
        bytes(range(256)) * 3,
    ],
)
def test_scan_matches_the_regex(raw: bytes) -> None:
    assert has_long_digit_run(raw) == (REFERENCE.search(raw) is not None)


def test_scan_matches_the_regex_on_random_bodies() -> None:
    rng = random.Random(21)
    alphabet = b'0123456789 ,.-e"{}[]\xc3\xa9a'
    for _ in range(2000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
        if rng.random() < 0.3:
            at = rng.randrange(0, len(raw) + 1)
            raw = raw[:at] + b"7" * rng.randrange(17, 21) + raw[at:]
        assert has_long_digit_run(raw) == (REFERENCE.search(raw) is not None), raw


@pytest.mark.parametrize("length", [17, 18, 19, 20, 27, 28])
def test_scan_finds_a_run_at_every_offset(length: int) -> None:
    """Every place of a run relative to the sampled bytes (every 9th), and runs cut by one byte."""
    for before in range(0, 40):
        for filler in (b"a", b" ", b"\xc3"):
            raw = filler * before + b"5" * length + filler * 30
            assert has_long_digit_run(raw) == (length >= 19), (before, filler, length)
            cut = filler * before + b"5" * 9 + b"-" + b"5" * 9 + filler * 30
            assert not has_long_digit_run(cut)


def test_scan_of_a_body_full_of_numbers() -> None:
    """Many digit pairs on the sampled bytes (a table of numbers): past the candidates checked one by
    one, the whole body is scanned; the answer is the regex's either way."""
    rng = random.Random(5)
    numbers = b" ".join(str(rng.randrange(10**17)).encode() for _ in range(5000))
    assert has_long_digit_run(numbers) == (REFERENCE.search(numbers) is not None)
    assert has_long_digit_run(numbers + b" " + b"1" * 19)
    assert has_long_digit_run(b"1" * 19 + b" " + numbers)


def test_an_integer_beyond_64_bits_is_still_refused() -> None:
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 123456789012345678901}'
    with pytest.raises(InvalidRequestError, match="64 bits"):
        validate_body(body, ChatRequest)
