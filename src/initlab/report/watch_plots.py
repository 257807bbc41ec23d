"""Figures of a ``watch()`` history, from the plain :class:`WatchHistory` (never torch).

Per-layer curves over the training steps (mean, std, share near zero) and, per layer, the
histogram over time (fastai's "colorful dimension": x = step, y = output value, colour =
log of the count in that bin). Each record's histogram has its own range, so they are put
on one grid per layer (the union of the ranges) by spreading every bin's count over the
grid bins it overlaps.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from initlab.atomic import atomic_write_bytes
from initlab.report.histograms import png_bytes
from initlab.report.plots import color, plain, plot_style
from initlab.results.probe_records import Histogram, WatchHistory

CURVES = (("mean", "mean"), ("std", "std"), ("near_zero", "% near zero"))
HEAT_COLS = 4


def shown_layers(history: WatchHistory) -> list[str]:
    """The layers the figures show: activation outputs, else every watched layer."""
    kinds = {x.name: x.kind for r in history.records for x in r.layers}
    names = history.layer_names()
    acts = [n for n in names if kinds[n] == "activation"]
    return acts or names


def rebin(h: Histogram, lo: float, hi: float, bins: int) -> np.ndarray:
    """``h``'s bin counts spread onto ``bins`` equal bins over ``[lo, hi]`` by overlap.

    >>> rebin(Histogram(0.0, 1.0, [2, 4]), 0.0, 2.0, 4).tolist()
    [2.0, 4.0, 0.0, 0.0]
    """
    out = np.zeros(bins)
    width = (hi - lo) / bins
    for a, b, c in zip(h.edges[:-1], h.edges[1:], h.counts, strict=True):
        if c == 0 or b <= a:
            continue
        i0, i1 = int((a - lo) // width), int(math.ceil((b - lo) / width))
        for i in range(max(i0, 0), min(i1, bins)):
            left, right = lo + i * width, lo + (i + 1) * width
            out[i] += c * max(0.0, min(b, right) - max(a, left)) / (b - a)
    return out


def heat_grid(history: WatchHistory, layer: str) -> tuple[np.ndarray, list[int], float, float]:
    """(counts [bins x records], steps, lo, hi) of one layer's histograms over time."""
    hists = [
        (int(r.step or 0), x.histogram)
        for r in history.records
        for x in r.layers
        if x.name == layer and x.histogram is not None
    ]
    if not hists:
        return np.zeros((1, 0)), [], 0.0, 1.0
    lo = min(h.lo for _, h in hists)
    hi = max(h.hi for _, h in hists)
    bins = max(len(h.counts) for _, h in hists)
    grid = np.stack([rebin(h, lo, hi, bins) for _, h in hists], axis=1)
    return grid, [s for s, _ in hists], lo, hi


def draw_curves(axes, history: WatchHistory) -> None:
    """Mean, std and % near zero against the step, one line per shown layer."""
    labels = history.labels()
    for ax, (stat, title) in zip(axes, CURVES, strict=True):
        for i, name in enumerate(shown_layers(history)):
            steps, values = history.series(name, stat)
            y = np.array([np.nan if v is None else v for v in values], dtype=float)
            if stat == "near_zero":
                y = 100.0 * y
            ax.plot(steps, y, "o-", ms=2, lw=1.2, color=color(i), label=plain(labels[name]))
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.set_ylabel("%" if stat == "near_zero" else title)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)


def draw_heatmaps(axes, history: WatchHistory) -> None:
    """One histogram-over-time image per shown layer (colour: log(1 + count))."""
    labels = history.labels()
    names = shown_layers(history)
    for i, ax in enumerate(axes):
        if i >= len(names):
            ax.set_axis_off()
            continue
        grid, steps, lo, hi = heat_grid(history, names[i])
        if not steps:
            ax.set_axis_off()
            continue
        right = steps[-1] + (history.every if len(steps) == 1 else (steps[-1] - steps[0]) /
                             max(len(steps) - 1, 1))  # fmt: skip
        ax.imshow(np.log1p(grid), origin="lower", aspect="auto", cmap="viridis",
                  extent=(steps[0], right, lo, hi), interpolation="nearest")  # fmt: skip
        ax.grid(False)
        ax.set_title(plain(labels[names[i]]), fontsize=8)
        ax.set_xlabel("training step", fontsize=7)
        ax.set_ylabel("output value", fontsize=7)
        ax.tick_params(labelsize=6)


def _check(history: WatchHistory) -> None:
    if not history.records:
        raise ValueError("this watch recorded nothing yet: run training steps first")


def curves_png(history: WatchHistory) -> bytes:
    """PNG of :func:`draw_curves`."""
    _check(history)
    with plot_style():
        fig = Figure(figsize=(10.5, 3.0))
        FigureCanvasAgg(fig)
        draw_curves(fig.subplots(1, 3), history)
        fig.tight_layout()
        return png_bytes(fig)


def _heat_grid(history: WatchHistory) -> tuple[int, int]:
    """(columns, rows) of the histogram-over-time panels: up to four layers a row."""
    _check(history)
    n = max(len(shown_layers(history)), 1)
    return min(n, HEAT_COLS), math.ceil(n / HEAT_COLS)


def heatmaps_png(history: WatchHistory) -> bytes:
    """PNG of :func:`draw_heatmaps`, up to four layers a row."""
    cols, rows = _heat_grid(history)
    with plot_style():
        fig = Figure(figsize=(2.7 * cols, 2.3 * rows + 0.3))
        FigureCanvasAgg(fig)
        draw_heatmaps(fig.subplots(rows, cols, squeeze=False).ravel(), history)
        fig.suptitle("histogram over time (colour: log(1 + count))", fontsize=9)
        fig.tight_layout()
        return png_bytes(fig)


def watch_png(history: WatchHistory) -> bytes:
    """One PNG: the per-layer curves on top, the histograms over time below."""
    cols, rows = _heat_grid(history)
    with plot_style():
        fig = Figure(figsize=(max(10.5, 2.7 * cols), 3.2 + 2.4 * rows))
        FigureCanvasAgg(fig)
        top, bottom = fig.subfigures(2, 1, height_ratios=[3.2, 2.4 * rows])
        draw_curves(top.subplots(1, 3), history)
        draw_heatmaps(bottom.subplots(rows, cols, squeeze=False).ravel(), history)
        bottom.suptitle("histogram over time (colour: log(1 + count))", fontsize=9)
        fig.set_layout_engine("constrained")
        return png_bytes(fig)


def write_watch_png(history: WatchHistory, path: str | os.PathLike[str]) -> Path:
    """Write :func:`watch_png` to ``path`` and return it."""
    return atomic_write_bytes(path, watch_png(history))
