"""The report page of a sweep: the per-cell ranking and the heat maps, from its store only.

>>> render_sweep_report("runs/sweep-small")  # doctest: +SKIP
PosixPath('runs/sweep-small/report.html')
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from initlab.atomic import atomic_write_text
from initlab.report.content import Cell, Image, data_uri
from initlab.report.render import REPORT_NAME, _page, folder_links
from initlab.report.sweep_plots import loss_heatmaps
from initlab.results.store import Store
from initlab.results.summary import format_stat
from initlab.results.sweep_summary import CellBest, best_per_cell


@dataclass
class SweepContent:
    name: str
    headers: list[str]
    rows: list[list[Cell]]
    images: list[Image] = field(default_factory=list)
    runs: int = 0
    jobs: int = 0
    failed: int = 0
    config_json: str = "{}"


def collect_sweep(store: Store) -> SweepContent:
    """Gather the page's data: rows of :func:`best_per_cell` and one heat map per activation."""
    plan = store.get_meta("sweep_plan") or []
    records = {r.key: r for r in store.runs()}
    best = best_per_cell(plan, records)
    axes = list(best[0].cell) if best else []
    images = [
        Image(title=title, uri=data_uri(svg),
              caption=f"Mean final train loss over seeds, {title}; lighter is lower.")
        for title, svg in loss_heatmaps(best)
    ]  # fmt: skip
    return SweepContent(
        name=str(store.get_meta("name") or store.run_dir.name),
        headers=[*axes, "Rank", "Init", "Best lr", "Val loss", "Test accuracy", "Failed"],
        rows=[_row(r) for r in best],
        images=images,
        runs=len(records),
        jobs=len(plan),
        failed=sum(r.status == "failed" for r in records.values()),
        config_json=json.dumps(store.get_meta("config"), indent=2, default=str),
    )


def _row(r: CellBest) -> list[Cell]:
    cells = [Cell(str(v), v if isinstance(v, (int, float)) else None) for v in r.cell.values()]
    val = r.val_loss if math.isfinite(r.val_loss) else None
    acc = r.test_accuracy.mean if math.isfinite(r.test_accuracy.mean) else None
    return [
        *cells,
        Cell(str(r.rank), r.rank),
        Cell(r.init),
        Cell("—" if r.lr is None else f"{r.lr:g}", r.lr),
        Cell("—" if val is None else f"{val:.4f}", val),
        Cell(format_stat(r.test_accuracy), acc),
        Cell(str(r.failed), r.failed),
    ]


def render_sweep_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the sweep's page (default ``RUN_DIR/report.html``)."""
    run_dir = Path(run_dir)
    with Store.open(run_dir, create=False) as store:
        content = collect_sweep(store)
    out = Path(out) if out is not None else run_dir / REPORT_NAME
    html = _page("sweep.html", c=content, links=folder_links(run_dir, out))
    return atomic_write_text(out, html)
