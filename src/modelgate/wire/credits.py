"""Credits as every door shows them: ``meta.usage`` and the ``x-aimlapi-*`` cost headers."""

from __future__ import annotations

from typing import Any

from modelgate.catalog.models import CREDITS_PER_USD


def usd(credits: int) -> float:
    return round(credits / CREDITS_PER_USD, 9)


def usd_header(credits: int) -> str:
    return f"{credits / CREDITS_PER_USD:.9f}"


def meta(credits: int) -> dict[str, Any]:
    return {"usage": {"credits_used": credits, "usd_spent": usd(credits)}}


def cost_headers(credits: int) -> dict[str, str]:
    return {"x-aimlapi-credits-used": str(credits), "x-aimlapi-usd-spent": usd_header(credits)}
