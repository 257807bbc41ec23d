"""Render a run folder's results store into one self-contained HTML page.

Jinja2 with autoescaping on for every template, so run names, init specs, config values and
diagnosis lines are always text. Images are inline ``data:`` URIs and the only script is our
own sort code, allowed by its hash in the page's Content-Security-Policy: even a string that
slipped past escaping could not run a script or load anything from the network.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from initlab.atomic import atomic_write_text
from initlab.report import watch_plots
from initlab.report.content import (
    LAYER_HEADERS,
    SUMMARY_HEADERS,
    Cell,
    Content,
    config_differences,
    data_uri,
    open_and_collect,
)
from initlab.results.store import DB_NAME

REPORT_NAME = "report.html"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,  # every template, whatever its file name
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _version() -> str:
    try:
        return importlib.metadata.version("initlab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


UP_LEVELS = 2  # how far above a run folder its "up" link looks


def folder_links(run_dir: str | Path, out: str | Path) -> list[tuple[str, str]]:
    """(text, relative href) of the pages around a run folder: the nearest page above it
    (the parent's, or the grandparent's for a preset's nested sub-runs such as
    ``demo/xavier-tanh-sigmoid/tanh``), and each sub-folder holding a results store (a
    preset or sweep writes one per sub-run); hrefs are relative to the page at ``out``."""
    run_dir, here = Path(run_dir).resolve(), Path(out).resolve().parent
    links = []
    for parent in list(run_dir.parents)[:UP_LEVELS]:
        if (parent / DB_NAME).is_file() or (parent / REPORT_NAME).is_file():
            links.append((f"up: {parent.name}", os.path.relpath(parent / REPORT_NAME, here)))
            break
    if run_dir.is_dir():
        for child in sorted(p for p in run_dir.iterdir() if p.is_dir()):
            if (child / DB_NAME).is_file() or (child / REPORT_NAME).is_file():
                links.append((child.name, os.path.relpath(child / REPORT_NAME, here)))
    return links


def _page(template: str, links: Sequence[tuple[str, str]] = (), **context: object) -> str:
    env = _environment()
    script = env.get_template("_sort_script.html").render()
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return env.get_template(template).render(
        # Our own static code, never user data: safe to insert unescaped.
        script=Markup(script),
        script_hash=f"sha256-{digest}",
        initlab_version=_version(),
        summary_headers=SUMMARY_HEADERS,
        layer_headers=LAYER_HEADERS,
        links=list(links),
        **context,
    )


def report_html(content: Content) -> str:
    """The HTML text of one experiment's page."""
    return _page("report.html", c=content)


def comparison_html(a: Content, b: Content) -> str:
    """The HTML text of two experiments side by side."""
    return _page("compare.html", a=a, b=b, differences=config_differences(a.config, b.config))


def render_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of the experiment in ``run_dir`` (default ``RUN_DIR/report.html``).

    >>> render_report("runs/saito")  # doctest: +SKIP
    PosixPath('runs/saito/report.html')
    """
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / REPORT_NAME
    html = _page("report.html", c=open_and_collect(run_dir), links=folder_links(run_dir, out))
    return atomic_write_text(out, html)


def watch_html(history, name: str = "watch") -> str:
    """The HTML text of a ``watch()`` history: curves, histograms over time, numbers."""
    labels = history.labels()
    last = {}
    for row in history.rows():
        last[row["layer"]] = row  # the latest step of each layer
    rows = [
        [Cell(labels.get(r["layer"], r["layer"])), Cell(str(r["step"]), float(r["step"]))]
        + [_watch_cell(k, r[k]) for k in WATCH_KEYS]
        for r in last.values()
    ]
    return _page(
        "watch.html",
        name=name,
        steps=history.steps,
        every=history.every,
        eval_skipped=history.eval_skipped,
        curves_uri=data_uri(watch_plots.curves_png(history), "image/png"),
        heat_uri=data_uri(watch_plots.heatmaps_png(history), "image/png"),
        headers=("Layer", "Step", "Mean", "Std", "Near zero", "Grad std"),
        rows=rows,
    )


WATCH_KEYS = ("mean", "std", "near_zero", "grad_std")


def _watch_cell(key: str, value: float | None) -> Cell:
    if value is None:
        return Cell("—")
    return Cell(f"{value:.1%}" if key == "near_zero" else f"{value:.4g}", float(value))


def render_watch(history, out: str | Path = "watch.html", name: str = "watch") -> Path:
    """Write :func:`watch_html` of a :class:`~initlab.results.probe_records.WatchHistory`."""
    return atomic_write_text(out, watch_html(history, name))


def render_comparison(run_a: str | Path, run_b: str | Path, out: str | Path | None = None) -> Path:
    """Write a page putting two experiments side by side (default ``RUN_A/compare-<B>.html``)."""
    run_a, run_b = Path(run_a), Path(run_b)
    html = comparison_html(open_and_collect(run_a), open_and_collect(run_b))
    if out is None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_b.resolve().name)
        out = run_a / f"compare-{safe}.html"
    return atomic_write_text(out, html)
