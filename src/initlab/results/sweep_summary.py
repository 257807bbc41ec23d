"""The summary of a sweep: the best init per cell, each init at its own best learning rate.

A *cell* is one value of every sweep axis except ``inits`` and ``lr`` (e.g. activation x
depth). Within a cell, each init is taken at the lr with the lowest mean final validation
loss over seeds (an lr where any seed failed, diverged or has no validation loss scores
+inf: a setting that sometimes blows up is not "best"); then inits are ranked by mean test
accuracy at that lr, with 95% CIs (:func:`initlab.results.summary.stat`).

The plan is plain data (the store's ``sweep_plan`` meta value): a list of
``{"cell": {axis: value, ...}, "keys": [run keys], "inits": [init of each key]}``, one
entry per job ("inits" is optional: it names runs missing from the store).

>>> from initlab.results.records import MetricSeries, RunRecord
>>> from initlab.runspec import RunSpec
>>> def run(init, lr, seed, val, acc):
...     rc = RunSpec("digits", "mlp:8", "relu", init, seed, "sgd", lr, 8, 10)
...     return RunRecord(rc, test_accuracy=acc, metrics={"val_loss": MetricSeries("val_loss", [10], [val])})
>>> runs = [run("he", 0.1, 0, 0.5, 0.9), run("he", 1.0, 0, 0.3, 0.8), run("xavier", 0.1, 0, 0.4, 0.85)]
>>> plan = [{"cell": {"lr": 0.1}, "keys": [runs[0].key, runs[2].key]},
...         {"cell": {"lr": 1.0}, "keys": [runs[1].key]}]
>>> [(r.init, r.lr, r.rank) for r in best_per_cell(plan, {r.key: r for r in runs})]
[('xavier', 0.1, 1), ('he', 1.0, 2)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from initlab.results.records import RunRecord, Stat
from initlab.results.summary import stat

TUNED = "lr"  # the axis each init is tuned over inside a cell


@dataclass
class CellBest:
    """One init in one cell, at its best lr, with its rank (1 = best) in that cell."""

    cell: dict[str, Any]
    init: str
    lr: float | None
    val_loss: float  # mean final validation loss over seeds at that lr (inf: not usable)
    test_accuracy: Stat
    final_train_loss: Stat
    rank: int
    seeds: int
    failed: int  # runs of this init x lr that failed or are missing
    diverged: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; a non-finite ``val_loss`` becomes None."""
        d = asdict(self)
        d["val_loss"] = _json_number(self.val_loss)
        return d


def final_val_loss(record: RunRecord) -> float:
    """The last recorded validation loss of a run (NaN when it has none)."""
    series = record.metrics.get("val_loss")
    return float(series.values[-1]) if series and series.values else math.nan


def best_per_cell(
    plan: Sequence[Mapping[str, Any]], records: Mapping[str, RunRecord]
) -> list[CellBest]:
    """Rows in cell order (first appearance in the plan), ranked inside each cell."""
    # cell -> init -> lr -> runs (None for runs missing from the store)
    grid: dict[tuple, dict[str, dict[Any, list[RunRecord | None]]]] = {}
    cells: dict[tuple, dict[str, Any]] = {}
    for job in plan:
        cell = {k: v for k, v in job["cell"].items() if k != TUNED}
        key = tuple(sorted((k, repr(v)) for k, v in cell.items()))
        cells.setdefault(key, cell)
        lr = job["cell"].get(TUNED)
        names = job.get("inits") or ["?"] * len(job["keys"])  # init of each key, in order
        for run_key, name in zip(job["keys"], names):
            r = records.get(run_key)
            init = r.config.init if r is not None else name
            grid.setdefault(key, {}).setdefault(init, {}).setdefault(lr, []).append(r)
    rows: list[CellBest] = []
    for key, by_init in grid.items():
        best = [_best_lr(cells[key], init, by_lr) for init, by_lr in by_init.items()]
        order = sorted(range(len(best)), key=lambda i: _rank_key(best[i]))
        for rank, i in enumerate(order, start=1):
            best[i].rank = rank
        rows += sorted(best, key=lambda r: r.rank)
    return rows


def _best_lr(cell: dict[str, Any], init: str, by_lr: dict[Any, list[RunRecord | None]]):
    scored = [(_score(runs), i, lr) for i, (lr, runs) in enumerate(by_lr.items())]
    score, _, lr = min(scored, key=lambda t: (t[0], t[1]))
    runs = by_lr[lr]
    done = sorted((r for r in runs if r is not None and r.status != "failed"),
                  key=lambda r: r.config.seed)  # fmt: skip
    return CellBest(
        cell=cell,
        init=init,
        lr=lr,
        val_loss=score,
        test_accuracy=stat([r.test_accuracy for r in done]),
        final_train_loss=stat([r.final_train_loss for r in done]),
        rank=0,
        seeds=len(runs),
        failed=len(runs) - len(done),
        diverged=sum(r.status == "diverged" or r.diverged_step is not None for r in done),
    )


def _score(runs: Sequence[RunRecord | None]) -> float:
    losses = [math.nan if r is None or r.status == "failed" else final_val_loss(r) for r in runs]
    if not losses or not all(math.isfinite(v) for v in losses):
        return math.inf
    return math.fsum(losses) / len(losses)


def _rank_key(row: CellBest) -> tuple:
    acc = row.test_accuracy.mean
    return (0, -acc) if math.isfinite(acc) else (1, 0.0)


def _json_number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def sweep_summary_json(rows: Sequence[CellBest]) -> dict[str, Any]:
    """The sweep's ``summary.json`` payload: ``{"cells": [one entry per cell x init]}``."""
    out = []
    for r in rows:
        d = r.to_dict()
        for name in ("test_accuracy", "final_train_loss"):
            s = getattr(r, name)
            d[name] = {"mean": _json_number(s.mean), "ci95": _json_number(s.ci95),
                       "values": [_json_number(v) for v in s.values]}  # fmt: skip
        out.append(d)
    return {"cells": out}
