"""The report page of a width experiment (coord-check or width-transfer), from its store.

A coord-check store holds one ``CoordCheck`` probe record; a width-transfer store holds one
run per (parametrization, width, lr, seed) with ``parametrization`` and ``width`` in the
run config's ``extra`` and its ``train_loss`` series. Both pages are built from plain
records only, so they can be rebuilt anywhere:

>>> render_width_report("runs/width-transfer")  # doctest: +SKIP
PosixPath('runs/width-transfer/report.html')
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from initlab.atomic import atomic_write_text
from initlab.report.content import ENV_FIELDS, Cell, Image, data_uri
from initlab.report.render import REPORT_NAME, _page, folder_links
from initlab.report.width_plots import coord_figure, transfer_figure
from initlab.results.records import RunRecord
from initlab.results.store import Store
from initlab.results.width_records import (
    CoordCheck,
    TransferPoint,
    best_lrs,
    tail_mean,
    transfer_diagnosis,
    transfer_points,
)

TAIL = 50  # width-transfer metric: mean train loss of the last TAIL steps


def coord_from_store(store: Store) -> CoordCheck | None:
    """The stored coordinate check, or None."""
    found = store.probes(kind="CoordCheck")
    if not found:
        return None
    rec = found[-1]
    return rec if isinstance(rec, CoordCheck) else CoordCheck.from_dict(rec)


def points_from_runs(runs: Sequence[RunRecord], tail: int = TAIL) -> list[TransferPoint]:
    """Width-transfer points: the mean of the last ``tail`` train losses of each run."""
    rows = []
    for r in runs:
        extra = r.config.extra
        if "parametrization" not in extra or "width" not in extra or r.status == "running":
            continue
        series = r.metrics.get("train_loss")
        value = tail_mean(series.values, tail) if series is not None else math.inf
        rows.append((extra["parametrization"], extra["width"], r.config.lr, value))
    return transfer_points(rows)


def _coord_page(cc: CoordCheck) -> tuple[list[Image], list[str], list[list[Cell]]]:
    caption = "Mean over seeds; band: min to max over seeds. Log-log axes; flat lines mean width-independent."
    headers = ["Layer", *[f"x growth, step {t}" for t in cc.steps], "max spread"]
    rows = [
        [Cell(cc.label(layer))]
        + [Cell(f"{g:.3g}", g) for g in (cc.growth(layer, t) for t in cc.steps)]
        + [Cell(f"{s:.3g}", s) for s in [max(cc.spread(layer, t) for t in cc.steps)]]
        for layer in cc.layers
    ]
    return [Image("Coordinate check", data_uri(coord_figure(cc)), caption)], headers, rows


def _transfer_page(points: list[TransferPoint]) -> tuple[list[Image], list[str], list[list[Cell]]]:
    caption = (
        f"Mean train loss of the last {TAIL} steps, mean over seeds (band: min to max); "
        "star: the best learning rate of each width. Diverged runs are drawn at the top."
    )
    best = best_lrs(points)
    headers = ["Parametrization", "Width", "Best lr", "log2 best lr", "Loss at best lr"]
    rows = []
    for (param, width), lr in best.items():
        loss = next(
            p.mean for p in points if (p.parametrization, p.width, p.lr) == (param, width, lr)
        )
        rows.append([Cell(param), Cell(str(width), width), Cell(f"{lr:.3g}", lr),
                     Cell(f"{math.log2(lr):.0f}", math.log2(lr)), Cell(f"{loss:.4g}", loss)])  # fmt: skip
    return (
        [Image("Loss against learning rate", data_uri(transfer_figure(points)), caption)],
        headers,
        rows,
    )


def render_width_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for the width experiment in ``run_dir``; return its path."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / REPORT_NAME
    with Store.open(run_dir, create=False) as store:
        meta = store.meta()
        cc = coord_from_store(store)
        points = [] if cc is not None else points_from_runs(store.runs())
    diagnosis = [str(x) for x in meta.get("diagnosis") or []]
    if cc is not None:
        images, headers, rows = _coord_page(cc)
    elif points:
        images, headers, rows = _transfer_page(points)
        diagnosis = diagnosis or transfer_diagnosis(points)
    else:
        images, headers, rows = [], [], []
    env = dict(meta.get("environment") or {})
    environment = [(k, str(env.get(k, "not recorded"))) for k in ENV_FIELDS]
    environment += [(str(k), str(v)) for k, v in env.items() if k not in ENV_FIELDS]
    html = _page(
        "width.html",
        name=str(meta.get("name") or run_dir.resolve().name),
        verdict=diagnosis[0] if diagnosis else "Nothing recorded yet.",
        images=images,
        headers=headers,
        rows=rows,
        diagnosis=diagnosis,
        environment=environment,
        config_json=json.dumps(meta.get("config") or {}, indent=2, default=str),
        links=folder_links(run_dir, out),
    )
    return atomic_write_text(out, html)
