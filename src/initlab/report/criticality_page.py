"""Edge-of-chaos pages: the phase diagram, accuracy vs depth with 6 xi_c, Jacobian spectra.

Plain data in (lists of floats, the dict of ``initlab.theory.phase_diagram``), SVG figures
and one self-contained HTML page out (``criticality.html.j2``: autoescaped, no script); no
torch here, like the rest of :mod:`initlab.report`.

>>> d = {"activation": "tanh", "sigma_w2": [1.0, 2.0], "sigma_b2": [0.0, 0.1],
...      "xi_c": [[3.0, 5.0], [2.0, 9.0]], "critical_line": [{"sigma_b2": 0.0, "sigma_w2": 1.0}]}
>>> phase_figure(d)[:5]
b'<?xml'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import jinja2
import numpy as np

from initlab.atomic import atomic_write_text
from initlab.report.content import data_uri
from initlab.report.plots import plot_style, svg_bytes

PAGE = "criticality.html"


def _grid(rows) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)


def phase_figure(diagram: Mapping, point: tuple[float, float] | None = None) -> bytes:
    """log10 xi_c over (sigma_w^2, sigma_b^2) with the critical line (and a chosen point)."""
    from matplotlib.figure import Figure  # lazy: matplotlib only when drawing

    sw2, sb2 = diagram["sigma_w2"], diagram["sigma_b2"]
    xi = np.log10(np.clip(_grid(diagram["xi_c"]), 1e-3, 1e6))
    with plot_style():
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        mesh = ax.pcolormesh(sw2, sb2, xi, shading="nearest", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="log10 xi_c (correlation depth scale)")
        line = diagram["critical_line"]
        ax.plot([p["sigma_w2"] for p in line], [p["sigma_b2"] for p in line], "w-", lw=2,
                label="critical line chi_1 = 1")  # fmt: skip
        if point is not None:
            ax.plot(*point, "r*", ms=12, label="recommended")
        ax.text(min(sw2), max(sb2), " ordered", va="top", color="w")
        ax.text(max(sw2), min(sb2), "chaotic ", ha="right", va="bottom", color="w")
        ax.set(
            xlabel="sigma_w^2", ylabel="sigma_b^2", title=f"{diagram['activation']}: phase diagram"
        )
        ax.legend(loc="upper center", fontsize=8)
        return svg_bytes(fig)


def depth_figure(
    sigma_w2s: Sequence[float],
    depths: Sequence[int],
    accuracy: Sequence[Sequence[float | None]],
    xi_curve: tuple[Sequence[float], Sequence[float]] | None = None,
    title: str = "test accuracy after training",
) -> bytes:
    """Accuracy heat map (rows: depth, columns: sigma_w^2) with the curve 6 xi_c over it."""
    from matplotlib.figure import Figure  # lazy: matplotlib only when drawing

    with plot_style():
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        mesh = ax.pcolormesh(sigma_w2s, depths, _grid(accuracy), shading="nearest",
                             cmap="magma", vmin=0, vmax=1)  # fmt: skip
        fig.colorbar(mesh, ax=ax, label="test accuracy")
        if xi_curve is not None:
            x, y = xi_curve
            ax.plot(x, [min(v, 10 * max(depths)) for v in y], "c-", lw=2, label="6 xi_c")
            ax.set_ylim(min(depths) - 1, max(depths) * 1.05)
            ax.legend(loc="upper right", fontsize=8)
        ax.set(xlabel="sigma_w^2", ylabel="depth", title=title)
        return svg_bytes(fig)


def spectrum_figure(spectra: Mapping[str, Sequence[float]], title: str = "") -> bytes:
    """Histograms of squared singular values of the Jacobian, one per label (log x)."""
    from matplotlib.figure import Figure  # lazy: matplotlib only when drawing

    with plot_style():
        fig = Figure(figsize=(6.4, 3.6))
        ax = fig.add_subplot()
        values = [v for vs in spectra.values() for v in vs if v > 0]
        lo, hi = (min(values), max(values)) if values else (1e-3, 1e3)
        bins = np.logspace(math.log10(lo) - 0.1, math.log10(hi) + 0.1, 50)
        for label, vs in spectra.items():
            ax.hist([v for v in vs if v > 0], bins=bins, histtype="step", lw=1.5, label=label)
        ax.set_xscale("log")
        ax.set(xlabel="squared singular value of J", ylabel="count", title=title)
        ax.legend(fontsize=8)
        return svg_bytes(fig)


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def write_page(
    out: str | Path,
    title: str,
    summary: Sequence[tuple[str, str]],
    figures: Sequence[tuple[str, bytes]],
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence]]] = (),
    notes: Sequence[str] = (),
) -> Path:
    """Write the page: key-value summary, figures (caption, SVG), tables (caption, headers,
    rows) and notes; returns its path."""
    html = _env().get_template("criticality.html.j2").render(
        title=title, summary=list(summary), notes=list(notes),
        figures=[(c, data_uri(svg)) for c, svg in figures], tables=list(tables),
    )  # fmt: skip
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, html)
    return out
