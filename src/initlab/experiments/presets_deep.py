"""Presets of deep networks: Hinton's DBN pretraining against modern inits on a deep sigmoid
MLP, and residual MLPs at growing depth (He vs fixup, skipinit, zero_last_gamma).

They are built like the comparisons of :mod:`~initlab.experiments.presets_classic` (settings
as a function of ``quick``, the same run/print helpers) and register after them, so
``initlab run --list`` keeps its order.
"""

from __future__ import annotations

from pathlib import Path

import torch

from initlab.experiments.preset_registry import MultiResult, preset
from initlab.experiments.presets_classic import _compare, _lines, _run, ran_line, settings_summary
from initlab.initializers import init_
from initlab.models.specs import build
from initlab.probe.residual_growth import variance_growth
from initlab.report.render import render_report
from initlab.results.store import Store


def _dbn(quick: bool) -> dict:
    # pretraining sees the first 10,000 training images only (see train.trainer._init_data)
    epochs = 1 if quick else 3
    return dict(
        name="dbn-vs-modern", dataset="mnist", arch="mlp:256x4", activation="sigmoid",
        inits=[f"dbn:epochs={epochs},lr=0.05", "normal:std=0.01", "xavier_normal", "lsuv"],
        seeds=1 if quick else 3, optimizer="momentum", lr=0.05, batch_size=100,
        steps=300 if quick else 2000, eval_every=100 if quick else 500,
    )  # fmt: skip


@preset(
    "dbn-vs-modern",
    settings_summary(
        "Deep sigmoid MLP: DBN pretraining vs N(0,0.01) vs Xavier vs LSUV, "
        "fine-tuned with the same SGD",
        _dbn,
    ),  # fmt: skip
    in_demo=False,
)
def dbn_vs_modern(out: Path, quick: bool = False, progress=None):
    """Hinton's DBN pretraining then SGD fine-tuning against N(0, 0.01), Xavier and LSUV."""
    result = _run(out, progress, _dbn(quick), quick)
    return MultiResult(out, [result], _lines(result, []))


_RESIDUAL = "initlab.models.residual:residual_classifier"
_RESIDUAL_SETUPS = (  # (label, arch options, inits): each pair differs only in init
    ("plain", "", ["he_normal", "fixup"]),
    ("gated", ",gate=true", ["he_normal", "skipinit"]),
    ("batchnorm", ",norm=batchnorm", ["he_normal", "zero_last_gamma"]),
)


def _growth_line(arch: str, init: str, width: int) -> str:
    """Variance growth of the residual stream at init, on 512 N(0, 1) inputs."""
    model = build(arch, activation="relu", in_shape=(1, 28, 28), n_classes=10)
    init_(model, init, generator=torch.Generator().manual_seed(0))
    x = torch.randn(512, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    g = variance_growth(model, x, train=True)
    return f"{arch.split(':', 2)[-1]} {init}: output/input variance at init {g.growth:.3g}"


RESIDUAL_DEPTHS = {True: (10, 50), False: (10, 50, 100)}  # (quick, full)


@preset(
    "residual-depth",
    f"Residual MLPs of depth {'/'.join(map(str, RESIDUAL_DEPTHS[False]))} on MNIST: He vs "
    "fixup, skipinit (gated) and zero_last_gamma (BatchNorm branches); variance growth at "
    "init and training curves",
    in_demo=False,
)
def residual_depth(out: Path, quick: bool = False, progress=None):
    """Residual MLPs at growing depth: He vs fixup/skipinit/zero_last_gamma, growth and curves."""
    width, depths = 64, RESIDUAL_DEPTHS[bool(quick)]
    parts, lines = [], []
    for depth in depths:
        for label, extra, inits in _RESIDUAL_SETUPS:
            arch = f"{_RESIDUAL}:depth={depth},width={width}{extra}"
            growth = [_growth_line(arch, init, width) for init in inits]
            lines += growth
            folder = out / f"depth{depth}-{label}"
            part = _compare(
                folder, progress, report=False, name=f"residual depth {depth}, {label}",
                dataset="mnist", arch=arch, activation="relu", inits=inits,
                seeds=1 if quick else 3, optimizer="sgd", lr=0.01, batch_size=128,
                steps=100 if quick else 500, eval_every=50 if quick else 100,
            )  # fmt: skip
            with Store.open(folder) as store:
                store.put_meta("diagnosis", growth)
            part.report_path = render_report(folder)
            parts.append(part)
            lines += [ran_line(part), *part.notes]
    return MultiResult(out, parts, lines)
