"""Amounts of money as people type and read them, exact end to end.

A typed amount is parsed as a ``Decimal`` and turned into integer credits (1 USD = 2,000,000
credits, so any amount with at most six decimals is exact); amounts that do not fit exactly are
refused rather than rounded. ``usd_exact`` writes credits back with every significant digit:
11,110,000 credits are ``$5.555`` (not ``$5.55``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from modelgate.catalog.models import CREDITS_PER_USD

MAX_DECIMALS = 6


class AmountError(ValueError):
    """A typed amount that is not a plain, exact number of dollars (the message says why)."""


def parse_usd(raw: str, *, allow_negative: bool = False, max_usd: int = 1_000_000) -> int:
    """Credits of a typed USD amount (``5.555``, ``-2``, ``1,000``); AmountError when it is empty,
    zero, not a number, out of range or finer than a millionth of a dollar."""
    text = raw.strip().replace(",", "").removeprefix("$")
    if text.startswith("-$"):
        text = "-" + text[2:]
    if not text or len(text) > 32:
        raise AmountError("Enter an amount in USD, like 10 or 5.555.")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise AmountError("Enter an amount in USD, like 10 or 5.555.") from exc
    if not value.is_finite():
        raise AmountError("Enter an amount in USD, like 10 or 5.555.")
    if value < 0 and not allow_negative:
        raise AmountError("Enter an amount greater than 0.")
    if abs(value) > max_usd:
        raise AmountError(f"Enter at most {max_usd:,} USD.")
    if value != value.quantize(Decimal(1).scaleb(-MAX_DECIMALS)):
        raise AmountError(f"Use at most {MAX_DECIMALS} decimals (amounts are kept exactly).")
    if value == 0:
        raise AmountError("Enter an amount other than 0.")
    credits = value * CREDITS_PER_USD
    if credits != credits.to_integral_value():  # cannot happen with six decimals; kept as a guard
        raise AmountError(f"Use at most {MAX_DECIMALS} decimals (amounts are kept exactly).")
    return int(credits)


def usd_exact(credits: int) -> str:
    """``$5.555``, ``-$2.00``, ``$1,000.0000005``: at least two decimals, every significant one."""
    value = Decimal(credits) / CREDITS_PER_USD
    sign = "-" if value < 0 else ""
    value = abs(value)
    text = format(value.normalize(), "f")
    whole, _, frac = text.partition(".")
    frac = frac.ljust(2, "0")
    return f"{sign}${int(whole):,}.{frac}"
