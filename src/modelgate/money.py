"""The one way money is written for people (web pages, docs pages, error messages, audit lines).

``usd_text(0.3) == "$0.30"``, ``usd_text(1234.5) == "$1,234.50"``, ``usd_text(0.000003) == "$0.000003"``,
``usd_text(0.000023) == "$0.000023"``, ``usd_text(5.555) == "$5.555"``: never scientific notation, the
cents always shown, and beyond them only the digits the amount needs (up to four significant ones,
trailing zeros dropped). ``web/static/playground.js`` has the same function for the browser.
"""

from __future__ import annotations

import math
from decimal import Decimal

MAX_DECIMALS = 10
SIGNIFICANT = 4


def usd_text(value: float | Decimal | int) -> str:
    v = float(value)
    if not math.isfinite(v) or v == 0:
        return "$0.00"
    if v < 0:
        return "-" + usd_text(-v)
    decimals = min(MAX_DECIMALS, max(2, SIGNIFICANT - 1 - math.floor(math.log10(v))))
    text = f"{v:,.{decimals}f}"
    if text.replace(",", "").strip("0.") == "":  # below the smallest shown digit
        return "$0.00"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"${whole}.{frac}"
