"""The width-transfer preset: registration, a tiny run, resume, metric and best-lr logic."""

from __future__ import annotations

import math

import pytest
import torch

from initlab.experiments.presets import get_preset
from initlab.experiments.presets_width import LRS, width_transfer
from initlab.results.store import Store
from initlab.results.width_records import (
    TransferPoint,
    best_lrs,
    tail_mean,
    transfer_diagnosis,
    transfer_points,
)

torch.set_num_threads(1)


def test_preset_is_registered_outside_the_demo():
    p = get_preset("width-transfer")
    assert not p.in_demo and "muP" in p.summary
    assert LRS[0] == 2.0**-13 and LRS[-1] == 2.0**-4 and len(LRS) == 10
    assert all(b / a == 2.0 for a, b in zip(LRS, LRS[1:]))


def test_tiny_run_stores_every_run_reports_and_resumes(tmp_path):
    kw = dict(widths=(16, 32), lrs=(2.0**-8, 2.0**-6), steps=6, seeds=1, tail=3,
              dataset="blobs")  # fmt: skip
    first = width_transfer(tmp_path, **kw)
    assert first.trained == 2 * 2 * 2
    assert set(first.best) == {(p, w) for p in ("sp", "mup") for w in (16, 32)}
    assert set(first.best.values()) <= {2.0**-8, 2.0**-6}
    with Store.open(tmp_path, create=False) as store:
        runs = store.runs()
        assert len(runs) == 8 and all(len(r.metrics["train_loss"].values) == 6 for r in runs)
        assert {r.config.extra["parametrization"] for r in runs} == {"sp", "mup"}
    html = first.report_path.read_text()
    assert "Loss against learning rate" in html and "grid step" in html
    again = width_transfer(tmp_path, **kw)
    assert again.trained == 0 and again.best == first.best


def test_same_seed_sees_the_same_batches_at_every_width_and_lr(tmp_path):
    # At the base width SP and μP are the same network: identical loss curves.
    width_transfer(tmp_path, widths=(16,), lrs=(2.0**-6,), steps=5, seeds=1, tail=2,
                   base_width=16, dataset="blobs")  # fmt: skip
    with Store.open(tmp_path, create=False) as store:
        sp, mup = (r.metrics["train_loss"].values for r in store.runs())
    assert sp == mup


def test_tail_mean_and_divergence():
    assert tail_mean([5.0, 1.0, 3.0], 2) == 2.0
    assert tail_mean([1.0, math.nan, 2.0], 2) == math.inf
    assert tail_mean([1.0], 2) == math.inf


def test_best_lr_and_grid_steps_moved():
    rows = [("sp", 64, 2.0**-7, 0.5), ("sp", 64, 2.0**-9, 0.6), ("sp", 1024, 2.0**-7, math.inf),
            ("sp", 1024, 2.0**-9, 0.4), ("mup", 64, 2.0**-7, 0.5), ("mup", 1024, 2.0**-7, 0.3),
            ("mup", 1024, 2.0**-9, 0.35)]  # fmt: skip
    points = transfer_points(rows)
    assert best_lrs(points) == {("mup", 64): 2.0**-7, ("mup", 1024): 2.0**-7,
                                ("sp", 64): 2.0**-7, ("sp", 1024): 2.0**-9}  # fmt: skip
    lines = transfer_diagnosis(points)
    assert any(line.startswith("sp:") and "moves 2 grid step(s)" in line for line in lines)
    assert any(line.startswith("mup:") and "moves 0 grid step(s)" in line for line in lines)


def test_a_diverged_seed_makes_the_point_diverged():
    assert TransferPoint("sp", 64, 0.1, (0.3, math.inf)).mean == math.inf
    assert TransferPoint("sp", 64, 0.1, (0.3, 0.5)).mean == pytest.approx(0.4)
