"""Hand-built run records for results/report tests (no torch, no training).

Curves are plausible exponential decays plus seeded noise, so plots have something to draw;
they are not meant to look like any real experiment.
"""

from __future__ import annotations

import math

import numpy as np

from initlab.results.records import MetricSeries, RunRecord
from initlab.runspec import RunSpec

DEFAULT_INITS = ("normal:std=0.01", "lecun_normal", "he_normal")


def make_config(init: str, seed: int, steps: int = 200, **extra: object) -> RunSpec:
    return RunSpec(
        dataset="digits",
        arch="mlp:32x2",
        activation="relu",
        init=init,
        seed=seed,
        optimizer="sgd",
        lr=0.05,
        batch_size=32,
        steps=steps,
        eval_every=20,
        extra=dict(extra),
    )


def make_record(
    init: str,
    seed: int,
    *,
    steps: int = 200,
    floor: float = 0.2,
    acc: float = 0.9,
    diverge_at: int | None = None,
    early_stop: tuple[int, int] | None = None,
    lr_decay: bool = False,
) -> RunRecord:
    """A record whose train loss decays from 2.3 towards ``floor`` with seeded noise."""
    rng = np.random.default_rng([seed, len(init)])
    cfg = make_config(init, seed, steps)
    step_ids = list(range(1, steps + 1))
    loss = [floor + (2.3 - floor) * math.exp(-s / (steps / 5)) for s in step_ids]
    loss = [v * (1 + 0.05 * rng.standard_normal()) for v in loss]
    if diverge_at is not None:
        loss = [v if s < diverge_at else math.nan for s, v in zip(step_ids, loss)]
    lr = [0.05 * (0.5 ** (s // (steps // 2))) if lr_decay else 0.05 for s in step_ids]
    evals = list(range(cfg.eval_every, steps + 1, cfg.eval_every))
    val_loss = [floor + 0.05 + (2.3 - floor) * math.exp(-s / (steps / 5)) for s in evals]
    val_acc = [acc - (acc - 0.1) * math.exp(-s / (steps / 5)) for s in evals]
    test_acc = acc + 0.01 * float(rng.standard_normal())
    metrics = {
        "train_loss": MetricSeries("train_loss", step_ids, loss),
        "lr": MetricSeries("lr", step_ids, lr),
        "val_loss": MetricSeries("val_loss", evals, val_loss),
        "val_acc": MetricSeries("val_acc", evals, val_acc),
        "test_acc": MetricSeries("test_acc", [steps], [test_acc]),
    }
    stop, best = early_stop if early_stop is not None else (None, None)
    tail = [v for v in loss[-100:]]
    reached = next((s for s, v in zip(step_ids, loss) if v <= 0.5), None)
    status = "diverged" if diverge_at is not None else "finished"
    return RunRecord(
        config=cfg,
        status="stopped" if early_stop is not None else status,
        stopped_step=stop,
        best_step=best,
        val_loss=min(val_loss) if early_stop is not None else val_loss[-1],
        final_train_loss=sum(tail) / len(tail),
        test_accuracy=test_acc,
        test_loss=floor + 0.05,
        steps_to_target=reached,
        diverged_step=diverge_at,
        wall_time=1.0 + seed,
        metrics=metrics,
    )


def make_records(inits=DEFAULT_INITS, seeds: int = 3, steps: int = 200) -> list[RunRecord]:
    """Seeds x inits records: the first init barely learns, the last learns best."""
    out = []
    for k, init in enumerate(inits):
        floor = 2.25 - 2.1 * k / max(1, len(inits) - 1)
        acc = 0.11 + 0.8 * k / max(1, len(inits) - 1)
        for seed in range(seeds):
            out.append(make_record(init, seed, steps=steps, floor=floor, acc=acc))
    return out


def real_probe(init: str, seed: int, width: int = 32, depth: int = 3):
    """A real ProbeRecord (activations and gradients) of a small ReLU MLP under ``init``."""
    import torch

    import initlab
    from initlab.probe import probe

    layers: list[torch.nn.Module] = [torch.nn.Linear(64, width), torch.nn.ReLU()]
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))
    initlab.init_(model, init, generator=torch.Generator().manual_seed(seed))
    data = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(256, 64, generator=data)
    y = torch.randint(0, 10, (256,), generator=data)
    loss = torch.nn.functional.cross_entropy
    return probe(model, x, targets=y, loss_fn=loss).to_record()
