"""Helpers of the sweep tests: a tiny sweep file and a store-vs-store comparison."""

from __future__ import annotations

import math
from pathlib import Path

from initlab.results.store import Store

# The grid: 3 inits x 2 activations x 2 depths x 2 lrs x 3 seeds = 72 runs, 8 jobs.
TINY = """
name = "tiny"
[fixed]
dataset = "digits"
arch = "mlp:16x{depth}"
seeds = 3
batch_size = 32
steps = STEPS
eval_every = 50
[axes]
inits = ["lecun_normal", "xavier_normal", "he_normal"]
activation = ["relu", "tanh"]
depth = [1, 2]
lr = { min = 0.05, max = 0.2, num = 2 }
"""


def write_sweep(folder: Path, steps: int = 100, extra: str = "") -> Path:
    path = folder / "sweep.toml"
    path.write_text(TINY.replace("STEPS", str(steps)) + extra)
    return path


def records(run_dir: Path) -> dict:
    with Store.open(run_dir, create=False) as store:
        assert store.integrity_check() == "ok"
        return {r.key: r for r in store.runs()}


def max_difference(a_dir: Path, b_dir: Path) -> float:
    """Largest absolute difference of any scalar or metric point between two stores (not wall
    times); asserts both hold the same finished runs with the same metric steps."""
    a, b = records(a_dir), records(b_dir)
    assert set(a) == set(b) and a
    worst = 0.0
    for key, ra in a.items():
        rb = b[key]
        assert ra.status == rb.status == "finished", (ra.status, rb.status, rb.error)
        pairs = [(getattr(ra, n), getattr(rb, n)) for n in
                 ("final_train_loss", "test_accuracy", "test_loss")]  # fmt: skip
        assert ra.steps_to_target == rb.steps_to_target
        assert set(ra.metrics) == set(rb.metrics)
        for name, series in ra.metrics.items():
            assert series.steps == rb.metrics[name].steps, name
            pairs += list(zip(series.values, rb.metrics[name].values, strict=True))
        for x, y in pairs:
            if not (math.isnan(x) and math.isnan(y)):
                worst = max(worst, abs(x - y))
    return worst
