"""The classic initialization experiments as presets: the init comparisons of the
literature, activation histograms, DBN pretraining and residual networks in depth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rich.markup import escape

from initlab.experiments.compare import compare
from initlab.experiments.preset_registry import MultiResult, preset
from initlab.initializers import init_
from initlab.models.specs import build
from initlab.probe.experiment import histogram_grid
from initlab.probe.residual_growth import variance_growth
from initlab.report.histograms import write_histogram_png
from initlab.report.render import render_report
from initlab.results.store import Store


def _compare(out: Path, progress, report: bool = True, **options):
    return compare(out=out, progress=progress, report=report, **options)


@preset(
    "saito-init-compare",
    "MNIST 784-100x4-10 ReLU, batch 128, 2,000 SGD steps lr 0.01: std 0.01 vs sqrt(1/n) vs He",
)
def saito_init_compare(out: Path, quick: bool = False, progress=None):
    """The classic grid: std 0.01 vs LeCun vs He on the 4-layer ReLU MLP (quick: fewer steps)."""
    return _compare(
        out, progress, name="saito-init-compare", dataset="mnist", arch="mlp:100x4",
        activation="relu", inits=["normal:std=0.01", "lecun_normal", "he_normal"],
        seeds=2 if quick else 3, optimizer="sgd", lr=0.01, batch_size=128,
        steps=300 if quick else 2000, eval_every=100 if quick else 500,
    )  # fmt: skip


@preset(
    "pytorch-mnist-xavier",
    "784-256-256-10 ReLU, Adam lr 1e-3, batch 100, 15 epochs: xavier_uniform vs torch_default vs He",
)
def pytorch_mnist_xavier(out: Path, quick: bool = False, progress=None):
    """The PyTorch MNIST tutorial net with Adam: xavier_uniform vs torch_default vs He."""
    steps_per_epoch = 55_000 // 100  # the training split without the validation carve-out
    return _compare(
        out, progress, name="pytorch-mnist-xavier", dataset="mnist", arch="mlp:256,256",
        activation="relu", inits=["xavier_uniform", "torch_default", "he_normal"],
        seeds=1 if quick else 3, optimizer="adam", lr=1e-3, batch_size=100,
        steps=200 if quick else 15 * steps_per_epoch, eval_every=100 if quick else steps_per_epoch,
    )  # fmt: skip


@preset(
    "deep-relu",
    "30-layer 100-wide ReLU MLP on MNIST, SGD lr 0.01, batch 128, 2,000 steps: sqrt(1/n) vs He",
    in_demo=False,
)
def deep_relu(out: Path, quick: bool = False, progress=None):
    """A 30-layer ReLU MLP: sqrt(1/n) vanishes, He trains; prints both final losses."""
    result = _compare(
        out, progress, name="deep-relu", dataset="mnist", arch="mlp:100x30", activation="relu",
        inits=["lecun_normal", "he_normal"], seeds=1 if quick else 3, optimizer="sgd", lr=0.01,
        batch_size=128, steps=300 if quick else 2000, eval_every=100 if quick else 500,
    )  # fmt: skip
    losses = {s.init: s.final_train_loss.mean for s in result.summaries}
    lines = [f"{init}: final train loss (mean of the last 100 steps, over seeds) {loss:.4f}"
             for init, loss in losses.items()]  # fmt: skip
    ratio = losses["lecun_normal"] / losses["he_normal"]
    lines.append(f"sqrt(1/n) / He final-loss ratio: {ratio:.1f}x")
    return MultiResult(out, [result], lines)


@dataclass
class HistogramResult:
    """What the activation-histograms preset produced (printed by the CLI)."""

    run_dir: Path
    runs: list
    report_path: Path | None

    def print(self, console) -> None:
        """Print each run's per-layer std and its diagnosis, one line per activation/init."""
        for run in self.runs:
            stds = ", ".join(f"{x.std:.3g}" for x in run.activation_layers())
            kinds = ", ".join(sorted({f.kind for f in run.probe.findings})) or "no warning"
            console.print(f"{escape(run.activation):8} {escape(run.init):16} std by layer: "
                          f"{stds}  ({escape(kinds)})")  # fmt: skip
        console.print(f"run folder: {self.run_dir}")
        if self.report_path:
            console.print(f"report: {self.report_path}")


@preset(
    "activation-histograms",
    "5 x 100 Linear + sigmoid/tanh/ReLU fed 1,000 N(0,1) inputs under N(0,1), N(0,0.01), "
    "sqrt(1/n), sqrt(2/n): per-layer activation histograms",
)
def activation_histograms(out: Path, quick: bool = False, progress=None):
    """The course-notes histograms: 3 activations x 4 inits x 5 layers, probed at init."""
    inits = ["normal:std=1", "normal:std=0.01", "lecun_normal", "he_normal"]
    runs = histogram_grid(inits, ["sigmoid", "tanh", "relu"], layers=5, width=100, samples=1000)
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
        store.put_meta("diagnosis", [
            f"{r.activation} / {r.init}: {f.message}" for r in runs for f in r.probe.findings
        ])  # fmt: skip
        store.put_probes(runs)
    return HistogramResult(out, runs, _render(out))


def _render(run_dir: Path) -> Path | None:
    return render_report(run_dir)


@preset(
    "dbn-vs-modern",
    "Deep sigmoid MLP (784-256x4-10) on MNIST: DBN pretraining vs N(0,0.01) vs Xavier vs LSUV, "
    "fine-tuned with the same SGD",
    in_demo=False,
)
def dbn_vs_modern(out: Path, quick: bool = False, progress=None):
    """Hinton's DBN pretraining then SGD fine-tuning against He and LeCun from scratch."""
    # pretraining sees the first 10,000 training images only (see train.trainer._init_data)
    epochs = 1 if quick else 3
    return _compare(
        out, progress, name="dbn-vs-modern", dataset="mnist", arch="mlp:256x4",
        activation="sigmoid",
        inits=[f"dbn:epochs={epochs},lr=0.05", "normal:std=0.01", "xavier_normal", "lsuv"],
        seeds=1 if quick else 3, optimizer="momentum", lr=0.05, batch_size=100,
        steps=300 if quick else 2000, eval_every=100 if quick else 500,
    )  # fmt: skip


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


@preset(
    "residual-depth",
    "Residual MLPs of depth 10/50/100 on MNIST: He vs fixup, skipinit (gated) and "
    "zero_last_gamma (BatchNorm branches); variance growth at init and training curves",
    in_demo=False,
)
def residual_depth(out: Path, quick: bool = False, progress=None):
    """Residual MLPs at growing depth: He vs fixup/skipinit/zero_last_gamma, growth and curves."""
    width, depths = 64, (10, 50) if quick else (10, 50, 100)
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
    return MultiResult(out, parts, lines)
