"""Presets about what happens after the init: regularization and learning-rate schedules.

Each runs several settings that differ in one control (not in init) into ONE run folder, so
the report shows them side by side: the report labels each group with the settings that
differ (``xavier_uniform [extra.l2=0.0001]``), and ``summary.json`` holds one entry per
setting.
"""

from __future__ import annotations

import math
from pathlib import Path

from initlab.data.datasets import load
from initlab.errors import DataError
from initlab.experiments.compare import Comparison, compare
from initlab.experiments.preset_registry import MultiResult, preset
from initlab.report.render import render_report
from initlab.results.grouping import group_labels
from initlab.results.store import Store
from initlab.results.summary import summarize

MLP_EPOCH = 55_000 // 100  # steps per epoch at batch 100 (the training split without val)


def _settings_into_one_folder(out: Path, progress, name: str, base: dict, settings):
    """Train each (label, options) setting into ``out``; one combined summary and report."""
    records, trained, reused = [], 0, 0
    for _label, options in settings:
        part = compare(out=out, progress=progress, report=False, name=name, **base, **options)
        records += part.records
        trained, reused = trained + part.trained, reused + part.reused
    labels = group_labels(records)
    summaries = summarize(records, labels)
    with Store.open(out) as store:
        store.put_meta("name", name)
        store.put_meta("config", {**base, "settings": {k: v for k, v in settings}})
        store.put_summaries(summaries)
        store.write_config({**base, "settings": {k: v for k, v in settings}})
    combined = Comparison(run_dir=out, config={"name": name, **base}, records=records,
                          summaries=summaries, trained=trained, reused=reused)  # fmt: skip
    combined.report_path = render_report(out)
    return combined


def _val_lines(records, labels) -> list[str]:
    """Per setting: final and best val loss (mean over seeds) and how far final is above."""
    lines = []
    for label in dict.fromkeys(labels):
        runs = [r for r, lab in zip(records, labels, strict=True) if lab == label]
        final = _mean([r.val_loss for r in runs])
        best = _mean([min(r.metrics["val_loss"].values) for r in runs])
        steps = ", ".join(str(r.stopped_step or r.config.steps) for r in runs)
        lines.append(
            f"{label}: final val loss {final:.4f}, best {best:.4f} "
            f"({100 * (final / best - 1):+.1f}% above best); trained to step {steps}"
        )
    return lines


def _mean(values) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


REGULARIZERS = (
    ("none", {}),
    ("l2", {"l2": 1e-4}),
    ("l1", {"l1": 1e-5}),
    ("dropout", {"dropout": 0.5}),
    ("early-stopping", {"early_stopping": "monitor=val_loss,patience=5,restore_best=true"}),
)


@preset(
    "regularization",
    "784-256-256-10 ReLU, Adam lr 1e-3, 40 epochs on Fashion-MNIST: none / L2 / L1 / dropout "
    "0.5 / early stopping (val_loss, patience 5, restore best); train vs val curves",
    in_demo=True,
)
def regularization(out: Path, quick: bool = False, progress=None, dataset: str | None = None):
    """None / L2 / L1 / dropout / early stopping side by side (quick: MNIST, fewer epochs)."""
    dataset = dataset or ("mnist" if quick else "fashion-mnist")  # the demo: bundled data
    try:
        load(dataset)
    except DataError as e:
        raise DataError(
            f"{e} Or run this preset on MNIST: `initlab run regularization --dataset mnist`."
        ) from None
    base = dict(
        dataset=dataset, arch="mlp:256,256", activation="relu", inits=["xavier_uniform"],
        seeds=1, optimizer="adam", lr=1e-3, batch_size=100,
        steps=300 if quick else 40 * MLP_EPOCH, eval_every=100 if quick else MLP_EPOCH,
    )  # fmt: skip
    result = _settings_into_one_folder(out, progress, "regularization", base, REGULARIZERS)
    lines = _val_lines(result.records, group_labels(result.records))
    return MultiResult(out, [result], lines)


def _schedules(steps: int) -> tuple:
    quarter = steps // 4
    return (
        ("constant", {"schedule": "constant"}),
        ("step", {"schedule": f"step:step_size={quarter},gamma=0.5"}),
        ("cosine", {"schedule": f"cosine:decay_steps={steps}"}),
        # periods quarter, 2 quarters (t_mul 2), then the rest of a 4-quarter one
        ("cosine-restarts", {"schedule": f"cosine_restarts:first_decay_steps={quarter},t_mul=2"}),
    )


@preset(
    "lr-schedules",
    "MNIST 784-100x4-10 ReLU, He init, SGD momentum lr 0.05, 2,000 steps: constant vs step "
    "vs cosine vs cosine with warm restarts",
)
def lr_schedules(out: Path, quick: bool = False, progress=None, dataset: str | None = None):
    """Constant vs step vs cosine vs cosine with warm restarts, same init and optimizer."""
    steps = 300 if quick else 2000
    base = dict(
        dataset=dataset or "mnist", arch="mlp:100x4", activation="relu", inits=["he_normal"],
        seeds=1 if quick else 3, optimizer="momentum", lr=0.05, batch_size=128, steps=steps,
        eval_every=100 if quick else 250,
    )  # fmt: skip
    result = _settings_into_one_folder(out, progress, "lr-schedules", base, _schedules(steps))
    lines = [
        f"{s.init}: final train loss {s.final_train_loss.mean:.4f}, "
        f"test acc {s.test_accuracy.mean:.4f}"
        for s in result.summaries
    ]
    return MultiResult(out, [result], lines)
