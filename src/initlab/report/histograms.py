"""Activation-histogram figures from plain probe records (never torch).

One panel per layer for a single probe, or a grid (one row per init x activation, one column
per layer) for several runs of the classic experiment. Each panel has its own x range (the
layers' scales differ by orders of magnitude under a bad init) and its numbers (mean, std,
gradient std, values outside the range) in its title, off the bars. PNG output is byte-identical for the
same records: the Agg canvas, a fixed style, and no "Software" metadata.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from initlab.report.plots import color, log_axis, plain, plot_style
from initlab.results.probe_records import HistogramRun, LayerStats, ProbeRecord, layer_labels

STD_TITLE = "Activation and gradient std by layer, per activation and init"
PANEL_W, PANEL_H = 1.9, 1.55  # inches per panel: compact small multiples


def panel_layers(record: ProbeRecord) -> list[LayerStats]:
    """The layers a figure shows: activation outputs, or every layer when there are none."""
    layers = [x for x in record.layers if x.histogram is not None]
    acts = [x for x in layers if x.kind == "activation"]
    return acts or layers


def panel_title(layer: LayerStats, label: str) -> str:
    """The panel's title: its layer name, then the numbers (kept off the bars).

    >>> layer = LayerStats("1", "activation", "Tanh", 0, mean=0.0, std=0.5)
    >>> print(panel_title(layer, "layer 1"))
    layer 1
    mean 0 std 0.5
    """
    lines = [label, f"mean {layer.mean:.2g} std {layer.std:.2g}"]
    extra = []
    if layer.grad_std is not None:
        extra.append(f"grad std {layer.grad_std:.2g}")
    h = layer.histogram
    if h is not None and (h.underflow or h.overflow):
        extra.append(f"out of range {h.underflow}/{h.overflow}")
    if h is not None and h.nonfinite:
        extra.append(f"NaN/inf {h.nonfinite}")
    if extra:
        lines.append(", ".join(extra))
    return "\n".join(lines)


def _draw_panel(ax, layer: LayerStats, title: str, *, xlabel: bool, ylabel: bool) -> None:
    """One layer's histogram on its own x range (the scales of layers differ by orders of
    magnitude under a bad init; one shared axis would leave most panels empty)."""
    h = layer.histogram
    if h is None:
        ax.set_axis_off()
        return
    total = max(h.total, 1)
    ax.stairs([c / total for c in h.counts], h.edges, fill=True, color="#4c72b0", alpha=0.85)
    ax.set_xlim(h.lo, h.hi)
    ax.set_title(title, fontsize=6.5, linespacing=1.15)
    ax.tick_params(labelsize=5.5)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 4))
    ax.xaxis.get_offset_text().set_fontsize(5.5)
    if xlabel:
        ax.set_xlabel("output value", fontsize=6.5)
    if ylabel:
        ax.set_ylabel("fraction", fontsize=6.5)


def _labels(record: ProbeRecord) -> dict[str, str]:
    return layer_labels(record)


def layers_figure(record: ProbeRecord | HistogramRun, title: str | None = None) -> Figure:
    """One histogram panel per layer of one probe (fraction of outputs per bin)."""
    if isinstance(record, HistogramRun):
        title = title or f"{record.activation}, init {record.init}"
        record = record.probe
    layers = panel_layers(record)
    labels = _labels(record)
    cols = max(len(layers), 1)
    fig = Figure(figsize=(PANEL_W * cols, PANEL_H + 0.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, cols, squeeze=False)[0]
    for i, layer in enumerate(layers):
        _draw_panel(axes[i], layer, panel_title(layer, labels[layer.name]), xlabel=True,
                    ylabel=i == 0)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=8)
    return fig


def grid_figure(runs: Sequence[HistogramRun]) -> Figure:
    """Rows: one run each (activation x init); columns: layers. Every panel has its own x
    range; the row's init and activation are written at its left."""
    if not runs:
        raise ValueError("grid_figure needs at least one HistogramRun")
    per_row = [panel_layers(r.probe) for r in runs]
    cols = max(max(len(x) for x in per_row), 1)
    fig = Figure(figsize=(PANEL_W * cols + 0.8, PANEL_H * len(runs) + 0.3), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(runs), cols, squeeze=False)
    for r, (run, layers) in enumerate(zip(runs, per_row, strict=True)):
        labels = _labels(run.probe)
        for c in range(cols):
            ax = axes[r][c]
            if c >= len(layers):
                ax.set_axis_off()
                continue
            _draw_panel(ax, layers[c], panel_title(layers[c], labels[layers[c].name]),
                        xlabel=r == len(runs) - 1, ylabel=False)  # fmt: skip
            if c == 0:
                ax.set_ylabel(f"{plain(run.activation)}\n{plain(run.init)}\nfraction",
                              fontsize=6.5)  # fmt: skip
    return fig


def std_figure(runs: Sequence[HistogramRun]) -> Figure:
    """Activation std (top) and gradient std (bottom) by layer: one column per activation,
    one line per init, log scale. The gradient row is left out when no run has gradients."""
    acts = list(dict.fromkeys(r.activation for r in runs))
    inits = list(dict.fromkeys(r.init for r in runs))
    grads = any(x.grad_std is not None for r in runs for x in panel_layers(r.probe))
    rows = [("std", "activation std")] + ([("grad_std", "gradient std")] if grads else [])
    fig = Figure(figsize=(3.0 * len(acts) + 1.6, 2.2 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), len(acts), squeeze=False)
    for c, act in enumerate(acts):
        for r, (key, what) in enumerate(rows):
            ax = axes[r][c]
            for run in runs:
                if run.activation != act:
                    continue
                ys = [getattr(x, key) for x in panel_layers(run.probe)]
                ys = [y if y is not None and y > 0 else float("nan") for y in ys]
                ax.plot(range(1, len(ys) + 1), ys, "o-", ms=3, lw=1.2,
                        color=color(inits.index(run.init)), label=plain(run.init))  # fmt: skip
            ys = [y for ln in ax.get_lines() for y in ln.get_ydata() if y > 0]
            if ys and max(ys) > 10 * min(ys):  # log only where it spans a decade
                log_axis(ax)
            ax.set_title(f"{plain(act)}: {what}", fontsize=8)
            ax.set_xlabel("layer", fontsize=7)
            ax.set_ylabel(what, fontsize=7)
            ax.tick_params(labelsize=6)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, title="init")
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


def std_png(runs: Sequence[HistogramRun]) -> bytes:
    """PNG of :func:`std_figure`."""
    with plot_style():
        return png_bytes(std_figure(runs))


def report_figures(probes: Sequence[Any]) -> list[tuple[str, str, bytes]]:
    """(title, mime type, bytes) for the HTML report: the per-layer activation and gradient
    std of every stored :class:`HistogramRun`, then their histogram grid; other probe
    records are drawn by ``probe_plots``."""
    runs = [p for p in probes if isinstance(p, HistogramRun)]
    if not runs:
        return []
    return [
        (STD_TITLE, "image/png", std_png(runs)),
        ("Activation histograms per layer", "image/png", histogram_png(runs)),
    ]
