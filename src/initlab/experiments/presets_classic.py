"""The classic initialization experiments as presets: the init comparisons of the
literature and activation histograms (DBN pretraining and residual networks in depth are in
:mod:`~initlab.experiments.presets_deep`, which shares this module's helpers).

Each comparison preset keeps its settings in a function of ``quick`` (the short version
``make demo`` runs), so what ``initlab run --list`` says, what a run prints ("ran: ...") and
what it records (``config.json``) all come from the same settings. What a preset claims to
show is a :class:`~initlab.experiments.preset_registry.Lesson` computed from its summaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.markup import escape
from torch import nn

from initlab.data.datasets import load
from initlab.experiments.compare import Comparison, compare
from initlab.experiments.config import CompareConfig
from initlab.experiments.preset_registry import (
    Lesson,
    MultiResult,
    compare_stats,
    describe,
    lesson,
    preset,
)
from initlab.initializers import get, init_
from initlab.probe.experiment import histogram_experiment, histogram_grid
from initlab.report.histograms import write_histogram_png
from initlab.report.render import render_report
from initlab.results.store import Store
from initlab.results.summary import stat


def _compare(out: Path, progress, report: bool = True, **options):
    return compare(out=out, progress=progress, report=report, **options)


def settings_summary(lesson_text: str, settings) -> str:
    """The ``initlab run --list`` line of a comparison preset: the lesson, what the full run
    trains (from ``settings(False)``) and what ``--quick`` changes (from ``settings(True)``)."""
    full, quick = settings(False), settings(True)

    def text(value) -> str:
        return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    changed = [f"{k.replace('_', ' ')} {text(quick[k])}" for k in full
               if k != "name" and quick.get(k) != full[k]]  # fmt: skip
    changed += [f"{k.replace('_', ' ')} {text(quick[k])}" for k in quick if k not in full]
    text = f"{lesson_text}. {describe(full)}"
    return text + (f" (--quick: {', '.join(changed)})" if changed else "")


def ran_line(result: Comparison) -> str:
    """``ran: ...``: what a comparison trained, from the config it ran (epochs included)."""
    config = CompareConfig(**{k: v for k, v in result.config.items()
                              if k in CompareConfig.model_fields})  # fmt: skip
    try:
        train_size = len(load(config.dataset, data_dir=config.data_dir).train)  # cached
    except Exception:  # noqa: BLE001 - the size is a nicety; the run itself loaded the data
        train_size = None
    return f"ran: {describe(config, train_size)}"


def _run(out: Path, progress, settings: dict, quick: bool) -> Comparison:
    """Run one comparison preset's settings (quick runs are named ``NAME (quick)``); the
    report comes after, from :func:`_lines`, so that it shows what ran and the lessons."""
    name = settings["name"] + (" (quick)" if quick else "")
    return _compare(out, progress, report=False, **{**settings, "name": name})


def _lines(result: Comparison, lessons: list[Lesson], *extra: str) -> list[str]:
    """What ran, the folder's notes, ``extra`` and the lessons; also recorded in the run
    folder (meta ``diagnosis``, shown by its report), whose report is then rendered."""
    lines = [ran_line(result), *result.notes, *extra, *(x.text for x in lessons)]
    with Store.open(result.run_dir) as store:
        store.put_meta("diagnosis", lines)
    result.report_path = render_report(result.run_dir)
    return lines


def xavier_equals_lecun(fan_in: int = 100, fan_out: int = 100) -> str:
    """Whether lecun_normal and xavier_normal draw the same weights for a ``fan_in`` x
    ``fan_out`` Linear from the same generator (they do when fan_in == fan_out)."""
    layers = [nn.Linear(fan_in, fan_out) for _ in range(2)]
    for layer, scheme in zip(layers, ("lecun_normal", "xavier_normal"), strict=True):
        init_(layer, scheme, generator=torch.Generator().manual_seed(0))
    same = torch.equal(layers[0].weight, layers[1].weight)
    lecun, xavier = math.sqrt(1 / fan_in), math.sqrt(2 / (fan_in + fan_out))
    head = (f"On {fan_in}x{fan_out} layers lecun_normal (std sqrt(1/fan_in) = {lecun:.4g}) and "
            f"xavier_normal (std sqrt(2/(fan_in+fan_out)) = {xavier:.4g})")  # fmt: skip
    if same:
        return head + " draw the same weights, so sqrt(1/n) there is also Xavier/Glorot."
    return head + " draw different weights."


def _saito(quick: bool) -> dict:
    return dict(
        name="saito-init-compare", dataset="mnist", arch="mlp:100x4", activation="relu",
        inits=["normal:std=0.01", "lecun_normal", "he_normal"], optimizer="sgd", lr=0.01,
        batch_size=128, seeds=4 if quick else 5, steps=500 if quick else 2000,
        eval_every=250 if quick else 500,
    )  # fmt: skip


@preset(
    "saito-init-compare",
    settings_summary("N(0, 0.01) vs sqrt(1/n) (lecun_normal) vs He on a 4-layer ReLU MLP", _saito),
)
def saito_init_compare(out: Path, quick: bool = False, progress=None):
    """The classic grid: std 0.01 vs LeCun vs He on the 4-layer ReLU MLP (quick: fewer steps)."""
    result = _run(out, progress, _saito(quick), quick)
    s = result.summaries
    lessons = [
        lesson("N(0, 0.01) stalls a 4-layer ReLU net (its signal collapses), He trains it", s,
               "he_normal", "normal:std=0.01"),
        lesson("He beats sqrt(1/n) on a ReLU net", s, "he_normal", "lecun_normal"),
    ]  # fmt: skip
    return MultiResult(out, [result], _lines(result, lessons, xavier_equals_lecun()), lessons)


def _pytorch_mnist(quick: bool) -> dict:
    steps_per_epoch = 55_000 // 100  # the training split without the validation carve-out
    return dict(
        name="pytorch-mnist-xavier", dataset="mnist", arch="mlp:256,256", activation="relu",
        inits=["xavier_uniform", "torch_default", "he_normal"], optimizer="adam", lr=1e-3,
        batch_size=100, seeds=3, steps=200 if quick else 15 * steps_per_epoch,
        eval_every=100 if quick else steps_per_epoch,
    )  # fmt: skip


@preset(
    "pytorch-mnist-xavier",
    settings_summary(
        "The PyTorch MNIST tutorial net with Adam: xavier_uniform vs torch_default vs He",
        _pytorch_mnist,
    ),  # fmt: skip
    in_demo=False,  # with Adam the three are close: no lesson fits the demo's budget
)
def pytorch_mnist_xavier(out: Path, quick: bool = False, progress=None):
    """The PyTorch MNIST tutorial net with Adam: xavier_uniform vs torch_default vs He."""
    result = _run(out, progress, _pytorch_mnist(quick), quick)
    return MultiResult(out, [result], _lines(result, []))


_GLOROT_LR = {"tanh": 0.1, "sigmoid": 0.5}  # sigmoid's slope is a quarter of tanh's


def _glorot(quick: bool, activation: str = "tanh") -> dict:
    return dict(
        name=f"xavier-tanh-sigmoid, {activation}", dataset="mnist", arch="mlp:100x2",
        activation=activation, inits=["normal:std=1", "normal:std=0.01", "xavier_normal"],
        optimizer="sgd", lr=_GLOROT_LR[activation], batch_size=128, seeds=3 if quick else 5,
        steps=400 if quick else 2000, eval_every=200 if quick else 500,
    )  # fmt: skip


@preset(
    "xavier-tanh-sigmoid",
    settings_summary(
        "Xavier/Glorot vs N(0, 1) and N(0, 0.01) on tanh and on sigmoid MLPs; the same "
        "settings for both but the SGD lr ("
        + ", ".join(f"{a} {lr:g}" for a, lr in _GLOROT_LR.items())
        + ")",
        _glorot,
    ),
)
def xavier_tanh_sigmoid(out: Path, quick: bool = False, progress=None):
    """Glorot & Bengio's point: xavier_normal trains tanh and sigmoid nets that N(0, 1)
    (saturated) and N(0, 0.01) (collapsed) train worse; one run folder per activation."""
    parts, lines, lessons = [], [], []
    for activation in _GLOROT_LR:
        result = _run(out / activation, progress, _glorot(quick, activation), quick)
        s = result.summaries
        found = [
            lesson(f"Xavier trains a {activation} net better than N(0, 0.01)", s,
                   "xavier_normal", "normal:std=0.01"),
            lesson(f"Xavier trains a {activation} net better than N(0, 1)", s,
                   "xavier_normal", "normal", names=("xavier_normal", "normal (= N(0, 1))")),
        ]  # fmt: skip
        parts.append(result)
        lines += _lines(result, found)
        lessons += found
    return MultiResult(out, parts, lines, lessons)


def _deep_relu(quick: bool) -> dict:
    return dict(
        name="deep-relu", dataset="mnist", arch="mlp:100x10" if quick else "mlp:100x30",
        activation="relu", inits=["lecun_normal", "xavier_normal", "he_normal"],
        optimizer="sgd", lr=0.01, batch_size=128, seeds=3, steps=300 if quick else 2000,
        eval_every=300 if quick else 500,
    )  # fmt: skip


@preset(
    "deep-relu",
    settings_summary(
        "A deep 100-wide ReLU MLP: sqrt(1/n) and Xavier vanish, He trains", _deep_relu
    ),
)
def deep_relu(out: Path, quick: bool = False, progress=None):
    """A deep ReLU MLP: sqrt(1/n) and Xavier vanish, He trains; prints the final losses."""
    result = _run(out, progress, _deep_relu(quick), quick)
    s = result.summaries
    losses = {x.init: x.final_train_loss.mean for x in s}
    extra = [f"{init}: final train loss (mean of the last 100 steps, over seeds) {loss:.4f}"
             for init, loss in losses.items()]  # fmt: skip
    extra.append(
        f"sqrt(1/n) / He final-loss ratio: {losses['lecun_normal'] / losses['he_normal']:.1f}x"
    )
    depth = CompareConfig(arch=result.config["arch"]).model_arch()
    lessons = [
        lesson(f"He beats sqrt(1/n) on a deep ReLU net ({depth})", s, "he_normal", "lecun_normal"),
        lesson(f"He beats Xavier on a deep ReLU net ({depth})", s, "he_normal", "xavier_normal"),
    ]
    return MultiResult(out, [result], _lines(result, lessons, *extra), lessons)


@dataclass
class HistogramResult:
    """What the activation-histograms preset produced (printed by the CLI)."""

    run_dir: Path
    runs: list
    report_path: Path | None
    lines: list[str] = field(default_factory=list)  # what ran, the lessons
    lessons: list[Lesson] = field(default_factory=list)

    def print(self, console) -> None:
        """Print each run's per-layer std and its diagnosis, one line per activation/init,
        then what ran and the lessons."""
        for run in self.runs:
            stds = ", ".join(f"{x.std:.3g}" for x in run.activation_layers())
            kinds = ", ".join(sorted({f.kind for f in run.probe.findings})) or "no warning"
            console.print(f"{escape(run.activation):8} {escape(run.init):16} std by layer: "
                          f"{stds}  ({escape(kinds)})")  # fmt: skip
        for line in self.lines:
            console.print(escape(line))
        console.print(f"run folder: {self.run_dir}")
        if self.report_path:
            console.print(f"report: {self.report_path}")


def histogram_lessons(
    seeds: int, layers: int = 5, width: int = 100, samples: int = 1000, runs=()
) -> list[Lesson]:
    """The two histogram lessons over ``seeds`` weight draws (seeds 0..seeds-1): N(0, 1)
    saturates sigmoid (fraction of last-layer outputs within 0.01 of 0 or 1) and N(0, 0.01)
    collapses tanh (std of the last layer's outputs), each against lecun_normal. ``runs``
    (e.g. the grid) are reused where they match an (activation, init, seed) needed."""
    shape = dict(layers=layers, width=width, samples=samples)
    done = {(r.activation, r.init, r.seed): r for r in runs
            if (r.layers, r.width, r.samples) == (layers, width, samples)}  # fmt: skip

    def values(activation, init, key):
        init = get(init).to_spec()
        found = [done.get((activation, init, s)) or histogram_experiment(activation, init,
                 seed=s, **shape) for s in range(seeds)]  # fmt: skip
        return [getattr(run.activation_layers()[-1], key) for run in found]

    good = "lecun_normal (= xavier_normal here)"
    return [
        compare_stats(
            "N(0, 1) saturates sigmoid", f"layer-{layers} saturated fraction", True,
            ("N(0, 1)", good), stat(values("sigmoid", "normal:std=1", "saturation")),
            stat(values("sigmoid", "lecun_normal", "saturation")), (seeds, seeds),
        ),
        compare_stats(
            "N(0, 0.01) collapses tanh activations", f"layer-{layers} output std", True,
            (good, "N(0, 0.01)"), stat(values("tanh", "lecun_normal", "std")),
            stat(values("tanh", "normal:std=0.01", "std")), (seeds, seeds), digits=6,
        ),
    ]  # fmt: skip


HISTOGRAM_SEEDS = {True: 3, False: 10}  # weight draws behind the lessons (quick, full)


@preset(
    "activation-histograms",
    "5 x 100 Linear + sigmoid/tanh/ReLU fed 1,000 N(0,1) inputs under N(0,1), N(0,0.01), "
    "sqrt(1/n), sqrt(2/n): per-layer activation histograms (seed 0); saturation and collapse "
    f"over {HISTOGRAM_SEEDS[False]} seeds (--quick: {HISTOGRAM_SEEDS[True]})",
)
def activation_histograms(out: Path, quick: bool = False, progress=None):
    """The course-notes histograms: 3 activations x 4 inits x 5 layers, probed at init; the
    saturation and collapse lessons over several weight draws."""
    inits = ["normal:std=1", "normal:std=0.01", "lecun_normal", "he_normal"]
    seeds = HISTOGRAM_SEEDS[bool(quick)]
    runs = histogram_grid(inits, ["sigmoid", "tanh", "relu"], layers=5, width=100, samples=1000)
    lessons = histogram_lessons(seeds, runs=runs)
    r = runs[0]  # every run of the grid has the same shape
    acts = "/".join(dict.fromkeys(x.activation for x in runs))
    lines = [
        f"ran: {r.layers} x {r.width} Linear ({'with' if r.bias else 'no'} bias) + {acts}, "
        f"{r.samples:,} N(0, 1) inputs, inits {', '.join(dict.fromkeys(x.init for x in runs))}; "
        f"histograms of seed {r.seed}; lessons over seeds 0-{seeds - 1}",
        xavier_equals_lecun(),
        *(x.text for x in lessons),
    ]
    out.mkdir(parents=True, exist_ok=True)
    write_histogram_png(runs, out / "histogram.png")
    with Store.open(out) as store:
        store.put_meta("name", "activation-histograms")
        store.put_meta(
            "config",
            {
                "layers": 5,
                "width": 100,
                "samples": 1000,
                "seed": 0,
                "inits": inits,
                "activations": ["sigmoid", "tanh", "relu"],
            },
        )
        store.put_meta("diagnosis", [*lines, *(
            f"{r.activation} / {r.init}: {f.message}" for r in runs for f in r.probe.findings
        )])  # fmt: skip
        store.put_probes(runs)
    return HistogramResult(out, runs, _render(out), lines, lessons)


def _render(run_dir: Path) -> Path | None:
    return render_report(run_dir)
