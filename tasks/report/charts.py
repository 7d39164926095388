"""The report's charts: matplotlib (Agg) rendered to inline SVG, so the page needs no network and no script.

Every chart has axis titles and gridlines; text stays text (``svg.fonttype = none``: searchable,
selectable, and checkable by a test). Each SVG's element ids get a per-chart prefix so several charts
in one page never share an id. Labels come from data (model names, dates): matplotlib escapes them.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta

import matplotlib
import numpy as np

matplotlib.use("Agg")  # before pyplot: no display, no GUI toolkit

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

# Colour-blind-safe palette (Okabe-Ito), one colour per model in every chart of a page.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
WIDTH_IN = 9.0  # inches at 72 pt: about the page's text width
STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "clickrec",  # stable ids: the same figures give the same file
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
}
_ids = itertools.count(1)


def _svg(fig: plt.Figure) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no DOCTYPE, ids prefixed)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    prefix = f"c{next(_ids)}-"
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', text)
    text = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{prefix}\1"', text)
    return re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", text)


def _figure(height_in: float) -> tuple[plt.Figure, plt.Axes]:
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, height_in))
    return fig, ax


def _labels(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, loc="left", fontweight="bold")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _counts(ax: plt.Axes, axis: str = "y") -> None:
    """A count axis: whole-number ticks with thousands separators."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _plain_log(ax: plt.Axes) -> None:
    """Log axes labelled 1, 10, 100 rather than 10^0, 10^1."""
    for target in (ax.xaxis, ax.yaxis):
        target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))


def model_colours(models: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) per model, stable across the page's charts (sorted names)."""
    return {m: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i, m in enumerate(sorted(set(models)))}


MAX_DATE_TICKS = 10


def history_chart(
    series: Mapping[str, Sequence[tuple[date, float]]],
    *,
    title: str,
    ylabel: str,
    ylim: tuple[float, float],
    colours: Mapping[str, tuple[str, str]],
    nights: Sequence[date] | None = None,
) -> str:
    """One line per model over the nights; ``ylim`` (and ``nights``, the x range and ticks) shared by
    every protocol's chart of the page, so charts compare at a glance."""
    nights = sorted(set(nights or [d for pts in series.values() for d, _ in pts]))
    with plt.rc_context(STYLE):
        fig, ax = _figure(2.8)
        for model, points in sorted(series.items()):
            colour, marker = colours.get(model, (PALETTE[0], MARKERS[0]))
            ax.plot([d for d, _ in points], [v for _, v in points], color=colour, marker=marker,
                    markersize=4, linewidth=1.6, label=model)
        ax.set_ylim(*ylim)
        step = max(1, -(-len(nights) // MAX_DATE_TICKS))  # at most MAX_DATE_TICKS ticks, on nights only
        ax.set_xticks(nights[::step], [d.isoformat() for d in nights[::step]])
        if len(nights) > 1:
            # room for the end markers (datetimes: a date drops a part-day timedelta)
            first, last = (datetime.combine(d, time()) for d in (nights[0], nights[-1]))
            pad = max((last - first) * 0.04, timedelta(hours=6))
            ax.set_xlim(first - pad, last + pad)
        _labels(ax, title, "night (run date)", ylabel)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="model")
        return _svg(fig)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
    horizontal: bool = False,
    highlight: str | None = None,
) -> str:
    """Bars in the given order; ``highlight`` (a label) is drawn in the second colour (the night)."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(max(1.6, 0.28 * len(labels) + 0.8) if horizontal else 2.6)
        colours = [PALETTE[1] if lab == highlight else PALETTE[0] for lab in labels]
        positions = range(len(labels))
        if horizontal:
            ax.barh(positions, values, color=colours)
            ax.set_yticks(list(positions), labels)
            ax.invert_yaxis()
            ax.grid(axis="y", visible=False)
            _counts(ax, "x")
        else:
            ax.bar(positions, values, color=colours)
            step = max(1, len(labels) // 16)
            ax.set_xticks(list(positions)[::step], list(labels)[::step], rotation=0)
            ax.grid(axis="x", visible=False)
            if log_y:
                ax.set_yscale("log")
            else:
                _counts(ax)
        _labels(ax, title, xlabel, ylabel)
        return _svg(fig)


CURVE_POINTS = 200  # ranks drawn for the long-tail curve, evenly spaced on its log axis


def popularity_curve(counts: Sequence[int], *, title: str) -> str:
    """Events per item against popularity rank (``counts`` sorted descending), both axes logarithmic:
    the long tail's shape, drawn at about ``CURVE_POINTS`` ranks whatever the catalogue size."""
    ranks = np.unique(np.geomspace(1, max(len(counts), 1), CURVE_POINTS).round().astype(np.int64))
    with plt.rc_context(STYLE):
        fig, ax = _figure(2.6)
        ax.plot(ranks, np.asarray(counts)[ranks - 1], color=PALETTE[0], linewidth=1.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log(ax)
        _labels(ax, title, "item popularity rank (1 = most clicked)", "events in the training window")
        return _svg(fig)
