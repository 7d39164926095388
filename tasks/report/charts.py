"""Tiny inline-SVG charts for the nightly report: bars and lines, no JavaScript, no external assets.

The report must render offline and the venv has no plotting library, so these helpers emit plain SVG
text. Every label is XML-escaped here (labels come from data: model names, dates, ids).
Marks carry classes (``bar``, ``point``, ``line``) so tests can count them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

# Colour-blind-safe palette (Okabe-Ito), cycled per series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_FONT = 'font-family="sans-serif" font-size="11"'


def _num(x: float) -> str:
    """Coordinates with two decimals: small files, stable output."""
    return f"{x:.2f}"


def format_value(v: float) -> str:
    """Short tick/tooltip text: integers with separators, small fractions with 4 digits."""
    if v == 0:
        return "0"
    if abs(v) >= 1000 or float(v).is_integer():
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    return f"{v:.4f}"


def _scale(values: Sequence[float], log_y: bool) -> tuple[float, float, Callable[[float], float]]:
    """(lo, hi, f) with f mapping a value to 0..1; log scale uses log10(1 + v) so zeros stay drawable."""
    if log_y:

        def tf(v: float) -> float:
            return math.log10(1.0 + max(v, 0.0))
    else:

        def tf(v: float) -> float:
            return v

    tv = [tf(v) for v in values] or [0.0]
    lo = min(0.0, min(tv))
    hi = max(tv)
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi, lambda v: (tf(v) - lo) / (hi - lo)


def _frame(width: int, height: int, title: str, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
    )
    return "\n".join([head, f"<title>{escape(title)}</title>", *body, "</svg>"])


def _y_axis(
    left: int, top: int, plot_h: float, values: Sequence[float], log_y: bool, plot_w: float
) -> list[str]:
    """Axis line plus min / max labels (enough to read the magnitude; exact numbers are in tables)."""
    vmax = max(values) if values else 0.0
    vmin = min(0.0, min(values)) if values else 0.0
    out = [
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{_num(top + plot_h)}" stroke="#444"/>',
        f'<line x1="{left}" y1="{_num(top + plot_h)}" x2="{_num(left + plot_w)}" y2="{_num(top + plot_h)}" stroke="#444"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" {_FONT}>{escape(format_value(vmax))}</text>',
        f'<text x="{left - 4}" y="{_num(top + plot_h)}" text-anchor="end" {_FONT}>{escape(format_value(vmin))}</text>',
    ]
    if log_y:
        out.append(f'<text x="{left + 4}" y="{top - 6}" {_FONT} fill="#666">log scale</text>')
    return out


def bar_chart(
    values: Sequence[float],
    labels: Sequence[str] | None = None,
    *,
    title: str = "",
    width: int = 640,
    height: int = 240,
    log_y: bool = False,
    color: str = PALETTE[0],
    max_labels: int = 30,
) -> str:
    """Vertical bars, one ``<rect class="bar">`` per value (in order), with a ``<title>`` tooltip each.

    ``labels`` (same length as ``values``) are drawn under the bars, thinned to ``max_labels``.
    ``log_y`` plots log10(1 + v): long-tail counts stay readable.
    """
    values = [float(v) for v in values]
    if labels is not None and len(labels) != len(values):
        raise ValueError(f"bar_chart: {len(labels)} labels for {len(values)} values")
    left, right, top, bottom = 56, 10, 22, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    body = [f'<text x="{left}" y="14" {_FONT} font-weight="bold">{escape(title)}</text>'] if title else []
    body += _y_axis(left, top, plot_h, values, log_y, plot_w)
    if not values:
        body.append(f'<text x="{left + 8}" y="{top + plot_h / 2}" {_FONT}>no data</text>')
        return _frame(width, height, title, body)
    _, _, f = _scale(values, log_y)
    slot = plot_w / len(values)
    gap = min(2.0, slot * 0.2)
    step = max(1, math.ceil(len(values) / max_labels))
    for i, v in enumerate(values):
        h = max(0.0, f(v)) * plot_h
        x = left + i * slot + gap / 2
        y = top + plot_h - h
        tip = f"{labels[i]}: {format_value(v)}" if labels is not None else format_value(v)
        body.append(
            f'<rect class="bar" x="{_num(x)}" y="{_num(y)}" width="{_num(max(slot - gap, 0.5))}" '
            f'height="{_num(h)}" fill="{color}"><title>{escape(tip)}</title></rect>'
        )
        if labels is not None and i % step == 0:
            body.append(
                f'<text x="{_num(x + (slot - gap) / 2)}" y="{_num(top + plot_h + 14)}" text-anchor="middle" '
                f"{_FONT}>{escape(str(labels[i]))}</text>"
            )
    return _frame(width, height, title, body)


def line_chart(
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str = "",
    width: int = 640,
    height: int = 240,
    log_y: bool = False,
    max_labels: int = 12,
) -> str:
    """One ``<polyline class="line">`` per series and one ``<circle class="point">`` per non-None value.

    Every series has one value per x label; None leaves a gap in the line (a night without a figure).
    A legend names the series when there is more than one.
    """
    n = len(x_labels)
    for name, ys in series.items():
        if len(ys) != n:
            raise ValueError(f"line_chart: series {name!r} has {len(ys)} values for {n} x labels")
    left, right, top, bottom = 56, 10, 22, 34
    legend_h = 16 * len(series) if len(series) > 1 else 0
    plot_w, plot_h = width - left - right, height - top - bottom - legend_h
    all_vals = [float(v) for ys in series.values() for v in ys if v is not None]
    body = [f'<text x="{left}" y="14" {_FONT} font-weight="bold">{escape(title)}</text>'] if title else []
    body += _y_axis(left, top, plot_h, all_vals, log_y, plot_w)
    if not all_vals:
        body.append(f'<text x="{left + 8}" y="{_num(top + plot_h / 2)}" {_FONT}>no data</text>')
        return _frame(width, height, title, body)
    _, _, f = _scale(all_vals, log_y)

    def xpos(i: int) -> float:
        # A single night sits in the middle rather than on the axis.
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    step = max(1, math.ceil(n / max_labels))
    for i, lab in enumerate(x_labels):
        if i % step == 0 or i == n - 1:
            body.append(
                f'<text x="{_num(xpos(i))}" y="{_num(top + plot_h + 14)}" text-anchor="middle" {_FONT}>'
                f"{escape(str(lab))}</text>"
            )
    for s, (name, ys) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for i, v in enumerate(ys):
            if v is None:
                segments.append([])
                continue
            segments[-1].append(f"{_num(xpos(i))},{_num(top + plot_h - f(float(v)) * plot_h)}")
        for seg in segments:
            if len(seg) > 1:
                body.append(
                    f'<polyline class="line" points="{" ".join(seg)}" fill="none" stroke="{color}" stroke-width="2"/>'
                )
        for i, v in enumerate(ys):
            if v is None:
                continue
            y = top + plot_h - f(float(v)) * plot_h
            tip = f"{name} {x_labels[i]}: {format_value(float(v))}"
            body.append(
                f'<circle class="point" cx="{_num(xpos(i))}" cy="{_num(y)}" r="3" fill="{color}">'
                f"<title>{escape(tip)}</title></circle>"
            )
        if legend_h:
            ly = top + plot_h + 30 + 16 * s
            body.append(f'<rect x="{left}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
            body.append(f'<text x="{left + 14}" y="{ly}" {_FONT}>{escape(str(name))}</text>')
    return _frame(width, height, title, body)
