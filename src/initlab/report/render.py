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
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from initlab.atomic import atomic_write_text
from initlab.report.content import (
    LAYER_HEADERS,
    SUMMARY_HEADERS,
    Content,
    config_differences,
    open_and_collect,
)

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


def _page(template: str, **context: object) -> str:
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
    html = report_html(open_and_collect(run_dir))
    return atomic_write_text(Path(out) if out is not None else run_dir / REPORT_NAME, html)


def render_comparison(run_a: str | Path, run_b: str | Path, out: str | Path | None = None) -> Path:
    """Write a page putting two experiments side by side (default ``RUN_A/compare-<B>.html``)."""
    run_a, run_b = Path(run_a), Path(run_b)
    html = comparison_html(open_and_collect(run_a), open_and_collect(run_b))
    if out is None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_b.resolve().name)
        out = run_a / f"compare-{safe}.html"
    return atomic_write_text(out, html)
