"""Server-side SVG charts (no JavaScript): a stacked bar chart of usage per day and model.

The y-axis fits the data at any scale (a spend of $0.00004 gets an axis up to $0.00005, not 1), and
values are written as money when they are money. ``stacked_bars(..., width=360)`` draws a version
for phones with fewer, larger labels; the page shows one or the other by CSS media query.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from html import escape

from modelgate.money import usd_text

# Each colour has a contrast of at least 3:1 against the card background (graphics, WCAG 1.4.11).
PALETTE = ("#3b5bdb", "#2b8a3e", "#d9480f", "#ae3ec9", "#0b7285", "#a45b00", "#c2255c", "#5c940d")


def colors(models: list[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def nice_step(value: float, intervals: int = 4) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value / intervals``."""
    if value <= 0 or not math.isfinite(value):
        return 0.25
    rough = value / intervals
    magnitude = 10.0 ** math.floor(math.log10(rough))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= rough * (1 - 1e-12):
            return float(f"{step * magnitude:.12g}")
    return rough  # pragma: no cover - step 10 always fits


def axis(value: float, *, integer: bool = False) -> tuple[float, int]:
    """The top of a y-axis that fits ``value`` and its number of grid intervals (≤ 4), every grid
    line at a round number (a whole one for counts)."""
    step = max(1.0, nice_step(value)) if integer else nice_step(value)
    intervals = max(1, min(4, math.ceil(value / step - 1e-9))) if value > 0 else 4
    return float(f"{step * intervals:.12g}"), intervals


def nice_max(value: float) -> float:
    return axis(value)[0]


def number(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    if value >= 1 or value == 0:
        return f"{value:,.10g}"
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def money(value: float) -> str:
    """Dollars in the one money format of the site (``modelgate.money.usd_text``)."""
    return usd_text(value)


def stacked_bars(
    days: list[date],
    values: dict[tuple[date, str], float],
    palette: dict[str, str],
    *,
    title: str,
    fmt: Callable[[float], str] = number,
    width: int = 720,
    integer: bool = False,
) -> str:
    """An accessible SVG: one bar per day, stacked by model; a y-axis with round grid lines."""
    narrow = width < 500
    height = 240 if not narrow else 220
    left, right, top, bottom = (64 if fmt is money else 44), 8, 12, 28
    if narrow:
        left = left + 6
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(v for (d, _), v in values.items() if d == day) for day in days]
    ymax, intervals = axis(max(totals, default=0), integer=integer)
    slot = plot_w / max(len(days), 1)
    bar_w = max(2.0, slot * 0.62)
    out = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" class="{"narrow" if narrow else "wide"}">'
        f"<title>{escape(title)}</title>"
    ]
    for i in range(intervals + 1):
        y = top + plot_h - plot_h * i / intervals
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        label = escape(fmt(float(f"{ymax * i / intervals:.12g}")))
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
    )
    labels = 4 if narrow else 7
    label_every = max(1, math.ceil(len(days) / labels))
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for model, color in palette.items():
            v = values.get((day, model), 0.0)
            if v <= 0:
                continue
            h = max(1.0, plot_h * v / ymax)
            y -= h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}" rx="2">'
                f"<title>{escape(model)} · {day:%b %d}: {escape(fmt(v))}</title></rect>"
            )
        if i % label_every == 0:
            cx = left + slot * i + slot / 2
            out.append(f'<text x="{cx:.1f}" y="{height - 8}" text-anchor="middle">{day:%b %d}</text>')
    out.append("</svg>")
    return "".join(out)


def bar(pct: float, color: str, *, label: str) -> str:
    """A horizontal bar (``pct`` of 100) as SVG: no inline style, so the strict CSP holds."""
    pct = max(0.0, min(100.0, pct))
    return (
        f'<svg class="hbar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect class="track" width="100" height="10" rx="2"/>'
        f'<rect width="{pct:.1f}" height="10" rx="2" fill="{color}"/></svg>'
    )


def swatch(color: str) -> str:
    return (
        f'<svg class="swatch" viewBox="0 0 10 10" aria-hidden="true" xmlns="http://www.w3.org/2000/svg">'
        f'<rect width="10" height="10" rx="2" fill="{color}"/></svg>'
    )


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
