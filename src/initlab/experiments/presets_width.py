"""The ``width-transfer`` preset: does the best learning rate move when the MLP gets wider?

A 784-n-n-10 ReLU MLP on MNIST at widths 64..1024, Adam, learning rates 2^-13 .. 2^-4,
400 steps of batch 128, 3 seeds; the metric is the mean train loss of the last 50 steps.
Under SP the optimum moves with width, under μP (base width 64) it should not. Each
(parametrization, width, lr) trains its seeds as one stack of the stacked trainer, with its
keyed randomness; every stack is stored as it finishes, so an interrupted preset resumes
where it stopped.

>>> import tempfile
>>> res = width_transfer(tempfile.mkdtemp(), widths=(32, 64), lrs=(2**-8, 2**-6), steps=4,
...                      seeds=1, tail=2, dataset="blobs", parametrizations=("mup",))
>>> sorted(res.best)
[('mup', 32), ('mup', 64)]
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from initlab.data.datasets import load
from initlab.experiments.preset_registry import preset
from initlab.models.mup import width_arch
from initlab.report.width_report import points_from_runs, render_width_report
from initlab.results.store import Store, describe_environment
from initlab.results.width_records import best_lrs, transfer_diagnosis
from initlab.runspec import StackSpec
from initlab.train.parametrize import Parametrization
from initlab.train.stack_spec import Member, stack_spec
from initlab.train.trainer import train_stack

ARCH = "initlab.models.mup:mlp:depth=2"
WIDTHS = (64, 128, 256, 512, 1024)
LRS = tuple(2.0**k for k in range(-13, -3))  # 2^-13 .. 2^-4, a 2x grid
METRIC = "mean train loss of the last {tail} steps"


@dataclass
class TransferResult:
    """What the preset produced: the best lr of each (parametrization, width)."""

    run_dir: Path
    best: dict[tuple[str, int], float]
    diagnosis: list[str]
    report_path: Path | None
    trained: int
    wall_time: float

    def print(self, console) -> None:
        """Print the diagnosis lines: where the best learning rate moves with width."""
        for line in self.diagnosis:
            console.print(line)
        console.print(f"{self.trained} runs trained in {self.wall_time:.0f} s")
        console.print(f"run folder: {self.run_dir}")
        if self.report_path:
            console.print(f"report: {self.report_path}")


def _stack(param, width, lr, seeds, *, data, steps, batch_size, base_width) -> StackSpec:
    """The runs of one (parametrization, width, lr): its seeds; ``width`` also goes into each
    run's ``extra`` for the report, which reads no arch specs."""
    spec = stack_spec(
        [Member("auto", s) for s in seeds], data=data, arch=width_arch(ARCH, width),
        activation="relu", optimizer="adam", lr=float(lr), batch_size=batch_size, steps=steps,
        eval_every=None, target_loss=0.0,
        parametrization=Parametrization(param, base_width),
    )  # fmt: skip
    runs = tuple(replace(r, extra={**r.extra, "width": width}) for r in spec.runs)
    return StackSpec(runs, spec.device)


def width_transfer(
    out: str | Path,
    *,
    widths: Sequence[int] = WIDTHS,
    lrs: Sequence[float] = LRS,
    steps: int = 400,
    seeds: int = 3,
    tail: int = 50,
    batch_size: int = 128,
    base_width: int = 64,
    dataset: str = "mnist",
    parametrizations: Sequence[str] = ("sp", "mup"),
    progress=None,
) -> TransferResult:
    """Train every (parametrization, width, lr, seed) not yet in ``out``'s store; report."""
    out = Path(out)
    data = load(dataset)
    start, trained = time.perf_counter(), 0
    stacks = [
        _stack(p, w, lr, range(seeds), data=data, steps=steps, batch_size=batch_size,
               base_width=base_width)
        for p in parametrizations for w in widths for lr in lrs
    ]  # fmt: skip
    todo = [run for stack in stacks for run in stack.runs]
    with Store.open(out) as store:
        store.put_meta("name", "width-transfer")
        store.write_config({
            "arch": ARCH, "dataset": dataset, "widths": list(widths), "lrs": list(lrs),
            "steps": steps, "seeds": seeds, "batch_size": batch_size, "optimizer": "adam",
            "base_width": base_width, "parametrizations": list(parametrizations),
            "metric": METRIC.format(tail=tail),
        })  # fmt: skip
        store.put_meta("environment", describe_environment(torch.__version__, "cpu"))
        done = store.finished_keys()
        for i, stack in enumerate(stacks):
            missing = tuple(r for r in stack.runs if r.key() not in done)
            if missing:  # keyed randomness: a seed trained alone gets the same numbers
                for record in train_stack(StackSpec(missing, stack.device), data):
                    store.put_run(record)
                trained += len(missing)
            if progress is not None:
                progress((i + 1) * seeds, len(todo))
        keys = {c.key() for c in todo}
        points = points_from_runs([r for r in store.runs() if r.key in keys], tail)
        diagnosis = transfer_diagnosis(points)
        store.put_meta("diagnosis", diagnosis)
    report = render_width_report(out)
    return TransferResult(
        out, best_lrs(points), diagnosis, report, trained, time.perf_counter() - start
    )


QUICK = dict(widths=(64, 256), lrs=LRS[1::2], steps=100, seeds=1)  # what --quick runs


def _lr_range(lrs) -> str:
    return f"2^{math.log2(min(lrs)):.0f}..2^{math.log2(max(lrs)):.0f}"


FULL = {k: v.default for k, v in inspect.signature(width_transfer).parameters.items()
        if k in ("steps", "seeds")}  # fmt: skip


@preset(
    "width-transfer",
    f"784-n-n-10 ReLU MLP on MNIST, widths {', '.join(map(str, WIDTHS))}, Adam lr "
    f"{_lr_range(LRS)} ({len(LRS)} values), {FULL['steps']} steps, {FULL['seeds']} seeds: "
    f"best learning rate against width under SP vs muP (--quick: widths "
    f"{', '.join(map(str, QUICK['widths']))}, {len(QUICK['lrs'])} lrs, {QUICK['steps']} "
    f"steps, {QUICK['seeds']} seed)",
    in_demo=False,
)
def width_transfer_preset(out: Path, quick: bool = False, progress=None):
    """Best learning rate against width under SP vs muP (quick: 2 widths, 1 seed)."""
    if quick:
        return width_transfer(out, progress=progress, **QUICK)
    return width_transfer(out, progress=progress)
