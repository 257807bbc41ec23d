"""Width-scaling figures from plain records (SVG bytes, deterministic; no torch).

* :func:`coord_figure`: one log-log panel per step, mean |activation| of each layer against
  width, mean over seeds with a min-max band.
* :func:`transfer_figure`: one panel per parametrization, the width-transfer metric against
  the learning rate (log2 axis), one line per width, band over seeds, best lr marked.

>>> from initlab.results.width_records import TransferPoint
>>> svg = transfer_figure([TransferPoint("sp", 64, 0.01, (1.0, 1.2))])
>>> svg.startswith(b"<?xml")
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from initlab.report.plots import color, log_axis, plain, plot_style, svg_bytes
from initlab.results.width_records import CoordCheck, TransferPoint, best_lrs

_CLIP = 1e6  # diverged points are drawn at the top edge, not left out


def coord_figure(cc: CoordCheck) -> bytes:
    """SVG: a panel per step; x width, y mean |output| of each weight layer (log-log)."""
    n = len(cc.steps)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    with plot_style():
        fig = Figure(figsize=(3.3 * cols + 1.6, 2.7 * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        for i, step in enumerate(cc.steps):
            ax = axes[i // cols][i % cols]
            for j, layer in enumerate(cc.layers):
                per_width = np.array(
                    [cc.seed_values(layer, step, w) for w in range(len(cc.widths))], dtype=float
                )
                per_width[~np.isfinite(per_width) | (per_width <= 0)] = np.nan
                if np.isnan(per_width).all():
                    continue
                with np.errstate(all="ignore"):
                    mean = np.nanmean(per_width, 1)
                    lo, hi = np.nanmin(per_width, 1), np.nanmax(per_width, 1)
                ax.plot(cc.widths, mean, color=color(j), marker="o", ms=3, lw=1.3,
                        label=plain(cc.label(layer)) if i == 0 else None)  # fmt: skip
                if cc.seeds > 1:
                    ax.fill_between(cc.widths, lo, hi, color=color(j), alpha=0.2, lw=0)
            log_axis(ax, "x")
            log_axis(ax, "y")
            ax.set_xticks(cc.widths)
            ax.set_title(f"step {step}")
            if i % cols == 0:
                ax.set_ylabel("mean |activation|")
            if i // cols == rows - 1:
                ax.set_xlabel("width")
        for k in range(n, rows * cols):
            axes[k // cols][k % cols].set_visible(False)
        fig.suptitle(plain(f"coordinate check: {cc.parametrization}, {cc.optimizer} lr {cc.lr:g}"))
        fig.legend(loc="outside right upper", fontsize=8)
        return svg_bytes(fig)


def transfer_figure(points: Sequence[TransferPoint]) -> bytes:
    """SVG: metric against learning rate, one panel per parametrization, a line per width."""
    params = sorted({p.parametrization for p in points}, key=lambda p: (p != "sp", p))
    widths = sorted({p.width for p in points})
    best = best_lrs(points)
    with plot_style():
        fig = Figure(figsize=(4.2 * len(params) + 1.4, 3.4), layout="constrained")
        axes = fig.subplots(1, len(params), squeeze=False, sharey=True)[0]
        for ax, param in zip(axes, params):
            for j, width in enumerate(widths):
                pts = sorted(
                    (p for p in points if p.parametrization == param and p.width == width),
                    key=lambda p: p.lr,
                )
                if not pts:
                    continue
                lrs = [p.lr for p in pts]
                vals = np.clip(np.array([p.values for p in pts], dtype=float), None, _CLIP)
                vals[np.isnan(vals)] = _CLIP
                mean = np.clip([p.mean for p in pts], None, _CLIP)
                ax.plot(lrs, mean, color=color(j), marker="o", ms=3, lw=1.3, label=f"width {width}")
                if vals.shape[1] > 1:
                    ax.fill_between(lrs, vals.min(1), vals.max(1), color=color(j), alpha=0.15, lw=0)
                b = best.get((param, width))
                if b is not None:
                    ax.plot([b], [min(mean)], marker="*", ms=10, color=color(j), ls="")
            ax.set_xscale("log", base=2)
            finite = [p.mean for p in points if math.isfinite(p.mean)]
            if finite:
                lo, hi = min(finite), max(finite)
                top = min(hi * 1.3, lo * 40)
                ax.set_ylim(lo * 0.8, top)
                if top / lo > 10:
                    log_axis(ax, "y")
            ax.set_title(plain(param))
            ax.set_xlabel("learning rate")
        axes[0].set_ylabel("train loss (mean of last steps)")
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return svg_bytes(fig)
