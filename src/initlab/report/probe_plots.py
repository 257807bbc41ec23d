"""Probe figures for the report: per-layer activation and gradient std per group.

Works on the plain :class:`~initlab.results.probe_records.ProbeRecord` dataclasses (or their
dict form, which the store gives for a kind it does not know). Histogram grids come from
``initlab.report.histograms``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from initlab.report import histograms
from initlab.report.plots import color, log_axis, plain, plot_style, svg_bytes
from initlab.results.probe_records import ProbeRecord, layer_labels


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a probe record, whether it is a dataclass or its dict form."""
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def probe_layers(record: Any) -> list[Any]:
    """The layers a std-per-layer plot shows: activation outputs, else every probed layer."""
    layers = list(field_of(record, "layers", []) or [])
    acts = [x for x in layers if field_of(x, "kind") == "activation"]
    return acts or layers


def _mean_finite(values: Sequence[float | None]) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def layer_table(groups: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows ``{group, layer, act_std, grad_std}``: per-layer std averaged over seeds; the
    layer named as the figures and the diagnosis name it ("layer 2 (relu)")."""
    rows = []
    for label, records in groups.items():
        per_seed = [probe_layers(r) for r in records]
        if not per_seed:
            continue
        first = records[0]
        labels = layer_labels(first) if isinstance(first, ProbeRecord) else {}
        for i, layer in enumerate(per_seed[0]):
            same = [layers[i] for layers in per_seed if len(layers) > i]
            name = str(field_of(layer, "name", i))
            rows.append(
                {
                    "group": label,
                    "layer": labels.get(name, name),
                    "act_std": _mean_finite([field_of(x, "std") for x in same]),
                    "grad_std": _mean_finite([field_of(x, "grad_std") for x in same]),
                }
            )
    return rows


def layer_std_figure(groups: Mapping[str, Sequence[Any]]) -> bytes | None:
    """SVG: activation std (left) and gradient std (right) by layer, one line per group."""
    rows = layer_table(groups)
    if not rows:
        return None
    has_grad = any(math.isfinite(r["grad_std"]) for r in rows)
    with plot_style():
        fig = Figure(figsize=(7.5, 3.0))
        axes = fig.subplots(1, 2 if has_grad else 1, squeeze=False)[0]
        panels = [("act_std", "activation std")]
        if has_grad:
            panels.append(("grad_std", "gradient std"))
        for ax, (key, title) in zip(axes, panels):
            for i, label in enumerate(groups):
                mine = [r for r in rows if r["group"] == label]
                y = np.array([r[key] for r in mine], dtype=float)
                ax.plot(
                    range(1, len(y) + 1), y, "o-", color=color(i), ms=3, lw=1.2, label=plain(label)
                )
            y_all = np.array([r[key] for r in rows], dtype=float)
            y_all = y_all[np.isfinite(y_all)]
            if y_all.size and y_all.min() > 0:
                log_axis(ax)
            ax.set_title(title)
            ax.set_xlabel("layer (1 = first, as the diagnosis numbers them)")
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return svg_bytes(fig)


def histogram_figures(
    probes: Sequence[Any], groups: Mapping[str, Sequence[Any]] | None = None
) -> list[tuple[str, str, bytes]]:
    """(title, mime type, image bytes) of activation-histogram figures, drawn by the probe
    side's ``initlab.report.histograms``: its grid of stored ``HistogramRun`` records, then
    one row of per-layer panels per group (its first seed's probe at initialization)."""
    figures = list(histograms.report_figures(probes))
    for label, records in (groups or {}).items():
        record = records[0]
        if not hasattr(record, "layers") or not histograms.panel_layers(record):
            continue
        with plot_style():
            fig = histograms.layers_figure(record, title=plain(label))
            figures.append(
                (f"Activation histograms: {label}", "image/png", histograms.png_bytes(fig))
            )
    return figures
