"""Heat maps of a sweep, from its per-cell rows (plain data) only, as deterministic SVG.

One map per activation: inits down, the other cell axes (depth, ...) across, each square the
mean final train loss of that init at its own best lr in that cell.

>>> from initlab.results.records import Stat
>>> s = Stat(0.3, 0.0, 0.0, [0.3])
>>> from initlab.results.sweep_summary import CellBest
>>> rows = [CellBest({"activation": "relu", "depth": d}, "he", 0.1, 0.2, s, s, 1, 1, 0, 0)
...         for d in (1, 2)]
>>> [(title, svg[:5]) for title, svg in loss_heatmaps(rows)]
[('activation=relu', b'<?xml')]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from initlab.report.plots import plain, plot_style, svg_bytes
from initlab.results.sweep_summary import CellBest

SPLIT = "activation"  # one map per value of this axis


def _label(cell: dict, skip: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell.items() if k != skip) or "all"


def loss_heatmaps(rows: Sequence[CellBest]) -> list[tuple[str, bytes]]:
    """(title, SVG) per activation (one map when the sweep has no activation axis)."""
    maps: dict[str, dict[tuple[str, str], float]] = {}
    inits: dict[str, list[str]] = {}
    columns: dict[str, list[str]] = {}
    for r in rows:
        title = f"{SPLIT}={r.cell[SPLIT]}" if SPLIT in r.cell else "all cells"
        col = _label(r.cell, SPLIT)
        maps.setdefault(title, {})[(r.init, col)] = r.final_train_loss.mean
        inits.setdefault(title, [])
        columns.setdefault(title, [])
        if r.init not in inits[title]:
            inits[title].append(r.init)
        if col not in columns[title]:
            columns[title].append(col)
    return [(t, _heatmap(t, inits[t], columns[t], maps[t])) for t in maps]


def _heatmap(title: str, inits: list[str], cols: list[str], values) -> bytes:
    grid = np.array([[values.get((i, c), math.nan) for c in cols] for i in inits], dtype=float)
    with plot_style():
        fig = Figure(figsize=(1.6 + 1.3 * len(cols), 0.9 + 0.45 * len(inits)))
        ax = fig.add_subplot()
        masked = np.ma.masked_invalid(grid)
        image = ax.imshow(masked, cmap="viridis_r", aspect="auto")
        ax.grid(False)
        ax.set_xticks(range(len(cols)), [plain(c) for c in cols])
        ax.set_yticks(range(len(inits)), [plain(i) for i in inits])
        finite = grid[np.isfinite(grid)]
        middle = float(finite.mean()) if finite.size else 0.0
        for (y, x), v in np.ndenumerate(grid):
            text = f"{v:.3g}" if math.isfinite(v) else "n/a"
            ax.text(x, y, text, ha="center", va="center",
                    color="white" if math.isfinite(v) and v > middle else "black")  # fmt: skip
        ax.set_title(plain(f"final train loss, {title} (each init at its best lr)"))
        fig.colorbar(image, ax=ax, label="final train loss")
        return svg_bytes(fig)
