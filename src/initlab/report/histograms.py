"""Activation-histogram figures from plain probe records (never torch).

One panel per layer for a single probe, or a grid (one row per init x activation, one column
per layer) for several runs of the classic experiment. Values outside a histogram's range
are shown as underflow / overflow counts in the panel. PNG output is byte-identical for the
same records: the Agg canvas, a fixed style, and no "Software" metadata.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from initlab.report.plots import plot_style
from initlab.results.probe_records import HistogramRun, LayerStats, ProbeRecord

PANEL_W, PANEL_H = 2.2, 1.7  # inches per panel


def panel_layers(record: ProbeRecord) -> list[LayerStats]:
    """The layers a figure shows: activation outputs, or every layer when there are none."""
    layers = [x for x in record.layers if x.histogram is not None]
    acts = [x for x in layers if x.kind == "activation"]
    return acts or layers


def _draw_panel(ax, layer: LayerStats, title: str) -> None:
    h = layer.histogram
    if h is None:
        ax.set_axis_off()
        return
    total = max(h.total, 1)
    ax.stairs([c / total for c in h.counts], h.edges, fill=True, color="#4c72b0", alpha=0.85)
    ax.set_xlim(h.lo, h.hi)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)
    lines = [f"mean {layer.mean:.3g}", f"std {layer.std:.3g}"]
    if h.underflow or h.overflow:
        lines.append(f"<{h.lo:.3g}: {h.underflow}  >{h.hi:.3g}: {h.overflow}")
    if h.nonfinite:
        lines.append(f"NaN/inf: {h.nonfinite}")
    ax.text(0.97, 0.95, "\n".join(lines), transform=ax.transAxes, ha="right", va="top",
            fontsize=6, bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})  # fmt: skip


def _share_x(axes, layers: list[LayerStats]) -> None:
    """One x-range per row (the union of the panels' ranges), so shrinking or growing
    spreads show as narrowing or widening histograms, as in the classic figure."""
    ranges = [(x.histogram.lo, x.histogram.hi) for x in layers if x.histogram is not None]
    if ranges:
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        for ax in axes[: len(layers)]:
            ax.set_xlim(lo, hi)


def _label(layer: LayerStats, position: int) -> str:
    what = layer.activation or layer.kind
    return f"layer {position} ({what})"


def layers_figure(record: ProbeRecord | HistogramRun, title: str | None = None) -> Figure:
    """One histogram panel per layer of one probe (fraction of outputs per bin)."""
    if isinstance(record, HistogramRun):
        title = title or f"{record.activation}, init {record.init}"
        record = record.probe
    layers = panel_layers(record)
    cols = max(len(layers), 1)
    fig = Figure(figsize=(PANEL_W * cols, PANEL_H + 0.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, cols, squeeze=False)[0]
    for i, layer in enumerate(layers):
        _draw_panel(axes[i], layer, _label(layer, i + 1))
    _share_x(axes, layers)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def grid_figure(runs: Sequence[HistogramRun]) -> Figure:
    """Rows: one run each (activation x init); columns: layers."""
    if not runs:
        raise ValueError("grid_figure needs at least one HistogramRun")
    per_row = [panel_layers(r.probe) for r in runs]
    cols = max(max(len(x) for x in per_row), 1)
    fig = Figure(figsize=(PANEL_W * cols, PANEL_H * len(runs) + 0.3))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(runs), cols, squeeze=False)
    for r, (run, layers) in enumerate(zip(runs, per_row, strict=True)):
        for c in range(cols):
            ax = axes[r][c]
            if c >= len(layers):
                ax.set_axis_off()
                continue
            _draw_panel(ax, layers[c], f"layer {c + 1}")
            if c == 0:
                ax.set_ylabel(f"{run.activation}\n{run.init}", fontsize=7)
        _share_x(axes[r], layers)
    fig.tight_layout()
    return fig


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """Deterministic PNG bytes of a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def histogram_png(runs: Sequence[HistogramRun]) -> bytes:
    """The classic figure: panels per layer for one run, a grid for several."""
    with plot_style():
        fig = layers_figure(runs[0]) if len(runs) == 1 else grid_figure(runs)
        return png_bytes(fig)


def write_histogram_png(runs: Sequence[HistogramRun], path: str | os.PathLike[str]) -> None:
    """Write :func:`histogram_png` to ``path``."""
    with open(path, "wb") as f:
        f.write(histogram_png(runs))


def report_figures(probes: Sequence[Any]) -> list[tuple[str, str, bytes]]:
    """(title, mime type, bytes) for the HTML report: one grid of every stored
    :class:`HistogramRun`; other probe records are drawn by ``probe_plots``."""
    runs = [p for p in probes if isinstance(p, HistogramRun)]
    if not runs:
        return []
    return [("Activation histograms per layer", "image/png", histogram_png(runs))]
