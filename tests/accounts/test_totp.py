"""TOTP against RFC 6238's test vectors (SHA-1, appendix B), the window, and recovery codes."""

from __future__ import annotations

import base64

from modelgate.accounts import totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


def test_rfc_6238_vectors() -> None:
    # Appendix B gives 8 digits; the 6-digit codes are their last six.
    for when, code in (
        (59, "94287082"),
        (1111111109, "07081804"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
    ):
        assert totp.totp(RFC_SECRET, when) == code[-6:]


def test_a_code_matches_within_one_step_and_only_after_the_last_used() -> None:
    now = 1_700_000_000.0
    step = totp.step_at(now)
    code = totp.totp(RFC_SECRET, now)
    assert totp.matching_step(RFC_SECRET, code, when=now) == step
    assert totp.matching_step(RFC_SECRET, code, when=now + totp.STEP) == step  # a late typist
    assert totp.matching_step(RFC_SECRET, code, when=now + 3 * totp.STEP) is None
    assert totp.matching_step(RFC_SECRET, code, after=step, when=now) is None  # used already
    assert totp.matching_step(RFC_SECRET, code[:3] + " " + code[3:], when=now) == step
    for bad in ("", "12345", "1234567", "abcdef"):
        assert totp.matching_step(RFC_SECRET, bad, when=now) is None


def test_recovery_codes_are_distinct_and_forgiving_to_type() -> None:
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == 10
    assert totp.recovery_digest(codes[0]) == totp.recovery_digest(" " + codes[0].upper().replace("-", " "))
    assert totp.provisioning_uri("ABC", account="a@b.c").startswith(
        "otpauth://totp/modelgate:a%40b.c?secret=ABC"
    )
