"""Which page a run folder gets: a sweep, a width experiment, histograms, or a comparison.

``initlab report DIR`` goes through :func:`render_page`, so re-rendering a sweep or a
coord-check folder gives the same page its command wrote, not the generic one.

>>> render_page("runs/sweep-small")  # doctest: +SKIP
PosixPath('runs/sweep-small/report.html')
"""

from __future__ import annotations

from pathlib import Path

from initlab.report import render, sweep_report, width_report  # modules: tests patch them
from initlab.results.store import Store


def page_kind(run_dir: str | Path) -> str:
    """``sweep``, ``width``, ``histograms`` (activation-histogram runs and no training run,
    e.g. ``initlab run activation-histograms``) or ``comparison``, read from the store."""
    with Store.open(run_dir, create=False) as store:
        if store.get_meta("sweep_plan") is not None:
            return "sweep"
        if store.probes(kind="CoordCheck"):
            return "width"
        runs = store.runs()
        if not runs and store.probes(kind="HistogramRun"):
            return "histograms"
    if runs and all("parametrization" in r.config.extra for r in runs):
        return "width"
    return "comparison"


def render_page(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the page that fits the experiment in ``run_dir`` (default ``RUN_DIR/report.html``)."""
    run_dir = Path(run_dir)
    kind = page_kind(run_dir)
    if kind == "sweep":
        return sweep_report.render_sweep_report(run_dir, out)
    if kind == "width":
        return width_report.render_width_report(run_dir, out)
    return render.render_report(run_dir, out)  # comparison and histograms pages
