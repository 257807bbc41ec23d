"""The μP coordinate check: mean |activation| of every layer against width, step by step.

Each width is one stack of seeds trained by the stacked trainer (``train_stack``) under the
parametrization, with the trainer's keyed randomness (weights keyed by init spec and seed,
batches by seed, so every width of one seed sees the same batches). Before each step (and
after the last) the mean |output| of every weight layer on each seed's first training batch
is recorded. Under a parametrization that is right for the optimizer, no layer's size grows
with width.

>>> result = coord_check(widths=[32, 64], steps=1, seeds=1, dataset="blobs",
...                      base_width=32, parametrization="mup", threads=1)
>>> result.record.steps, result.record.layers, result.record.kinds
([0, 1], ['1', '3', '5'], ['input', 'hidden', 'output'])
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from rich.markup import escape

from initlab.data.datasets import load
from initlab.errors import ConfigError
from initlab.models.mup import OPTIMIZERS, PARAMETRIZATIONS, check_choice, width_arch
from initlab.probe.mean_abs import MeanAbs, weight_layers
from initlab.report.width_report import render_width_report
from initlab.results.store import Store, describe_environment
from initlab.results.width_records import CoordCheck, coord_diagnosis
from initlab.train.parametrize import Parametrization
from initlab.train.stack_spec import Member, stack_spec
from initlab.train.trainer import StackRun

DEFAULT_ARCH = "initlab.models.mup:mlp"
DEFAULT_WIDTHS = (64, 128, 256, 512, 1024)


@dataclass
class CoordResult:
    """What :func:`coord_check` produced; ``print`` is what the CLI shows."""

    record: CoordCheck
    diagnosis: list[str]
    run_dir: Path | None = None
    report_path: Path | None = None
    wall_time: float = 0.0
    extra: dict = field(default_factory=dict)

    def print(self, console) -> None:
        """Print each layer's growth across widths at every step, the diagnosis and the paths."""
        cc = self.record
        for layer in cc.layers:
            growth = ", ".join(f"{cc.growth(layer, t):.3g}" for t in cc.steps)
            console.print(
                f"{escape(cc.label(layer)):14} growth x(width {cc.widths[-1]} / "
                f"{cc.widths[0]}) by step: {growth}"
            )
        for line in self.diagnosis:
            console.print(escape(line))
        if self.run_dir is not None:
            console.print(f"run folder: {self.run_dir}")
        if self.report_path is not None:
            console.print(f"report: {self.report_path}")


def _check(widths: Sequence[int], steps: int, seeds: int, lr: float, batch_size: int) -> list[int]:
    widths = sorted({int(w) for w in widths})
    if len(widths) < 2 or widths[0] < 1:
        raise ConfigError(f"--widths needs at least two positive widths, got {list(widths)}.")
    if steps < 1 or seeds < 1 or batch_size < 1:
        raise ConfigError(
            f"--steps, --seeds and --batch-size must be >= 1, got {steps}, {seeds}, {batch_size}."
        )
    if not lr > 0:
        raise ConfigError(f"--lr must be > 0, got {lr}.")
    return widths


def coord_check(
    arch: str = DEFAULT_ARCH,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    *,
    parametrization: str = "mup",
    base_width: int | None = None,
    optimizer: str = "adam",
    lr: float = 1e-2,
    steps: int = 5,
    seeds: int = 3,
    dataset: str = "mnist",
    batch_size: int = 128,
    activation: str = "relu",
    init: str = "auto",
    data_dir: str | None = None,
    threads: int | None = None,
    out: str | Path | None = None,
    progress=None,
) -> CoordResult:
    """Run the coordinate check; with ``out``, store it and write ``report.html`` there.

    ``base_width`` defaults to the smallest width. ``threads`` sets ``torch.set_num_threads``.
    """
    parametrization = check_choice("parametrization", parametrization, PARAMETRIZATIONS)
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    widths = _check(widths, steps, seeds, lr, batch_size)
    base_width = int(base_width or widths[0])
    if threads is not None:
        torch.set_num_threads(int(threads))
    data = load(dataset, data_dir)
    start = time.perf_counter()
    values, layers, kinds = [], None, None
    for width in widths:
        spec = stack_spec(
            [Member(init, seed) for seed in range(seeds)], data=data,
            arch=width_arch(arch, width), activation=activation, optimizer=optimizer, lr=lr,
            batch_size=batch_size, steps=steps, eval_every=None, target_loss=0.0,
            parametrization=Parametrization(parametrization, base_width),
        )  # fmt: skip
        run = StackRun(spec, data)
        names = [n for n, _ in weight_layers(run.stack.template)]
        if layers is None:
            layers = names
            weight_kind = {r.name: r.kind for r in run.plan.rows}
            kinds = [weight_kind[f"{n}.weight" if n else "weight"] for n in names]
        elif names != layers:
            raise ConfigError(f"The layers of {arch} change with width ({layers} vs {names}).")
        rows: list[list[list[float]]] = [[] for _ in range(seeds)]
        run.run(observe=partial(_record, rows=rows, layers=layers, data=data))
        values.append([_pad(r, steps + 1, len(layers)) for r in rows])
        if progress is not None:
            progress(len(values) * seeds, len(widths) * seeds)
    cc = CoordCheck(
        parametrization, optimizer, float(lr), base_width, arch, dataset, widths,
        list(range(steps + 1)), seeds, list(layers or []), list(kinds or []), values, batch_size,
    )  # fmt: skip
    result = CoordResult(cc, coord_diagnosis(cc), wall_time=time.perf_counter() - start)
    if out is not None:
        result.run_dir, result.report_path = _save(Path(out), result)
    return result


def _record(_updates: int, run: StackRun, *, rows, layers, data) -> None:
    """Mean |output| of each weight layer of every member on its seed's first batch."""
    first = run.order_of_batches.indices(0)  # (seeds, batch): members are ordered by seed
    for k in range(run.stack.K):
        model = run.stack.member_model(k)
        with torch.no_grad(), MeanAbs(model) as probe:
            model(data.train.features(first[k].cpu()))
        rows[k].append([probe.values.get(n, float("nan")) for n in layers])


def _pad(rows: list[list[float]], count: int, width: int) -> list[list[float]]:
    """A seed's rows up to ``count`` (NaN rows after every member diverged)."""
    return rows + [[float("nan")] * width for _ in range(count - len(rows))]


def _save(out: Path, result: CoordResult) -> tuple[Path, Path]:
    cc = result.record
    with Store.open(out) as store:
        store.put_meta("name", f"coord-check {cc.parametrization} {cc.optimizer} lr {cc.lr:g}")
        store.write_config({
            k: getattr(cc, k) for k in ("arch", "dataset", "parametrization", "optimizer", "lr",
                                        "base_width", "widths", "seeds", "batch_size")
        } | {"steps": cc.steps[-1]})  # fmt: skip
        store.put_meta("environment", describe_environment(torch.__version__, "cpu"))
        store.put_meta("diagnosis", result.diagnosis)
        store.put_probe(cc)
    return out, render_width_report(out)
