"""A NaN-diverging init beside He through ``initlab compare``: He's results stay intact.

The issue's case: ReLU MLP on MNIST, ``normal:std=10`` vs ``he_normal``, plain SGD at lr 0.1.
(tests/test_train_trainer.py checks the trainer's freezing with momentum beside another
init; this one goes end to end through the CLI, the store, summary.json and report.html.)
"""

from __future__ import annotations

import html
import json
import math

from initlab.cli import main
from initlab.results.store import Store

ARGS = [
    "compare", "--dataset", "mnist", "--arch", "mlp:100x4", "--activation", "relu",
    "--optimizer", "sgd", "--lr", "0.1", "--batch-size", "64", "--steps", "40",
    "--eval-every", "10", "--seeds", "1", "--threads", "1",
]  # fmt: skip


def _runs(out):
    with Store.open(out, create=False) as store:
        assert store.integrity_check() == "ok"
        return {r.config.init: r for r in store.runs()}


def test_std_10_diverges_and_he_equals_he_alone(tmp_path, capsys):
    main([*ARGS, "--inits", "normal:std=10,he_normal", "--out", str(tmp_path / "both")])
    main([*ARGS, "--inits", "he_normal", "--no-report", "--out", str(tmp_path / "alone")])
    capsys.readouterr()
    both, alone = _runs(tmp_path / "both"), _runs(tmp_path / "alone")

    bad = both["normal:std=10.0"]
    assert bad.status == "diverged" and 1 <= bad.diverged_step <= 5, bad.diverged_step
    losses = bad.metrics["train_loss"]
    assert losses.steps[-1] == bad.diverged_step
    assert not math.isfinite(losses.values[-1])
    assert all(math.isfinite(v) for v in losses.values[:-1])
    assert math.isnan(bad.test_accuracy)

    he, he_alone = both["he_normal"], alone["he_normal"]
    assert he.status == he_alone.status == "finished" and he.diverged_step is None
    assert he.metrics == he_alone.metrics  # every loss, accuracy and lr, bit for bit
    for name in ("final_train_loss", "test_accuracy", "test_loss", "steps_to_target"):
        assert getattr(he, name) == getattr(he_alone, name), name
    assert he.test_accuracy > 0.5  # it really trained

    summary = json.loads((tmp_path / "both" / "summary.json").read_text())
    diverged = {entry["init"]: entry["diverged"] for entry in summary["inits"]}
    assert diverged == {"normal:std=10.0": 1, "he_normal": 0}
    page = html.unescape((tmp_path / "both" / "report.html").read_text())
    assert f"diverged at step {bad.diverged_step}" in page
