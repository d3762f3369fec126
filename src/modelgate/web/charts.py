"""Server-side SVG charts (no JavaScript): a stacked bar chart of usage per day and model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

PALETTE = ("#3b5bdb", "#2b8a3e", "#e8590c", "#ae3ec9", "#1098ad", "#f08c00", "#c2255c", "#5c940d")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    color: str


def colors(models: list[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 2.5, 5, 10):
        top = step * magnitude
        if top >= value:
            return float(top)
    return float(value)


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}" if value >= 1 or value == 0 else f"{value:.2g}"


def stacked_bars(
    days: list[date], values: dict[tuple[date, str], float], palette: dict[str, str], *, title: str
) -> str:
    """An accessible SVG: one bar per day, stacked by model; y-axis with 4 grid lines."""
    width, height = 720, 240
    left, right, top, bottom = 44, 8, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(v for (d, _), v in values.items() if d == day) for day in days]
    ymax = _nice_max(max(totals, default=0))
    slot = plot_w / max(len(days), 1)
    bar_w = max(4.0, slot * 0.62)
    out = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(ymax * i / 4)}</text>')
    out.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
    )
    label_every = max(1, len(days) // 7)
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for model, color in palette.items():
            v = values.get((day, model), 0.0)
            if v <= 0:
                continue
            h = plot_h * v / ymax
            y -= h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}" rx="2">'
                f"<title>{escape(model)} · {day:%b %d}: {_fmt(v)}</title></rect>"
            )
        if i % label_every == 0 or i == len(days) - 1:
            cx = left + slot * i + slot / 2
            out.append(f'<text x="{cx:.1f}" y="{height - 8}" text-anchor="middle">{day:%b %d}</text>')
    out.append("</svg>")
    return "".join(out)


def last_days(today: date, n: int) -> list[date]:
    return [today - timedelta(days=n - 1 - i) for i in range(n)]
