"""Edge-of-chaos presets: trainable depth vs xi_c, dynamical isometry, a deep vanilla CNN.

* ``edge-of-chaos`` (Schoenholz et al. 2017, Fig. 6 style): tanh MLPs, sigma_b^2 = 0.05,
  sigma_w^2 on a grid around the critical 1.76, several depths, MNIST, SGD; the accuracy heat
  map with 6 xi_c drawn over it and the agreement of "trained" (test acc > 0.5) with
  depth < 6 xi_c.
* ``dynamical-isometry`` (Pennington, Schoenholz and Ganguli 2017): Jacobian spectra at init
  of deep tanh nets at criticality (Gaussian vs orthogonal, small q*) and ReLU (He Gaussian,
  He orthogonal) by depth, then training speed of the tanh nets on MNIST.
* ``deep-vanilla-cnn`` (Xiao et al. 2018): a plain tanh CNN (no BatchNorm, no skips):
  delta-orthogonal at criticality vs Gaussian at the same sigma_w^2 (LeCun) vs He.

Scale: the machine this was built on has 2 shared CPU cores, so the full modes are reduced
from the papers (widths 100-200 rather than 1000+, a few thousand steps, 16-channel CNN on
7 x 7 feature maps); each preset's docstring says its scale.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from initlab.activations import resolve
from initlab.experiments.compare import compare
from initlab.experiments.preset_registry import preset
from initlab.initializers import init_
from initlab.initializers.registry import get
from initlab.probe.jacobian import jacobian_spectrum
from initlab.report.criticality_page import depth_figure, spectrum_figure, write_page
from initlab.theory import critical_point, xi_c

SIGMA_B2 = 0.05


@dataclass
class ChaosResult:
    """What an edge-of-chaos preset produced: lines to print, the page, the JSON."""

    run_dir: Path
    lines: list[str] = field(default_factory=list)
    report_path: Path | None = None

    def print(self, console) -> None:
        """Print the result lines and where the page is."""
        for line in self.lines:
            console.print(line, markup=False)
        console.print(f"report: {self.report_path}", markup=False)


def vanilla_cnn(activation="tanh", in_shape=(1, 28, 28), n_classes=10, depth: int = 100,
                channels: int = 16) -> nn.Sequential:  # fmt: skip
    """A vanilla CNN: two stride-2 3x3 convs (28 -> 7), ``depth - 2`` more 3x3 convs at 7 x 7,
    the activation after each, no norm, no skip, no bias; then flatten and a Linear head.

    >>> vanilla_cnn(depth=4, channels=4)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    act = resolve(activation)
    layers: list[nn.Module] = []
    c_in = in_shape[0]
    for i in range(depth):
        layers += [nn.Conv2d(c_in, channels, 3, stride=2 if i < 2 else 1, padding=1, bias=False),
                   act.module()]  # fmt: skip
        c_in = channels
    side = math.ceil(math.ceil(in_shape[1] / 2) / 2)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * side * side, n_classes))


def _acc(result) -> dict[str, tuple[float, float]]:
    return {s.init: (s.test_accuracy.mean, s.test_accuracy.ci95) for s in result.summaries}


def _sw2_spec(sw2: float) -> str:
    return f"variance_scaling:scale={sw2:.4g}"


@preset(
    "edge-of-chaos",
    "tanh MLPs, sigma_b^2 = 0.05, sigma_w^2 around the critical 1.76 x depths, MNIST SGD: "
    "accuracy heat map vs 6 xi_c (Schoenholz et al. 2017)",
    in_demo=False,
)
def edge_of_chaos(out: Path, quick: bool = False, progress=None):
    """Quick: width 100, depths 4/16/48, 5 sigma_w^2, 150 steps (about 2 min). Full: width
    100, depths 10/20/40/70/100, 8 sigma_w^2 in [1, 4], 600 SGD steps lr 0.01 batch 128, 1
    seed (measured: 8 min on 2 shared cores, 36 of 40 cells agree with 6 xi_c). The paper:
    width 300, depths to 300, many epochs; out of reach on 2 cores, so depth <= 100 and 600
    steps here (depth 100 does not train in 600 steps even at criticality)."""
    out = Path(out)
    sw2s = [1.0, 1.5, 1.76, 2.5, 4.0] if quick else [1.0, 1.25, 1.5, 1.76, 2.1, 2.5, 3.0, 4.0]
    depths = [4, 16, 48] if quick else [10, 20, 40, 70, 100]
    steps, width = (150, 100) if quick else (600, 100)
    grid: list[list[float | None]] = []
    for depth in depths:
        res = compare(
            out=out / f"depth-{depth}", progress=progress, report=False, name=f"edge-of-chaos-{depth}",
            dataset="mnist", arch=f"mlp:{width}x{depth}", activation="tanh",
            inits=[_sw2_spec(s) for s in sw2s], bias=f"normal:std={math.sqrt(SIGMA_B2):.6g}",
            seeds=1, optimizer="sgd", lr=0.01, batch_size=128, steps=steps,
            eval_every=steps,
        )  # fmt: skip
        acc = _acc(res)
        grid.append([acc.get(get_spec(_sw2_spec(s)), (None,))[0] for s in sw2s])
    xis = [float(x) for x in xi_c("tanh", sw2s, SIGMA_B2)]
    agree = total = 0
    rows = []
    for depth, accs in zip(depths, grid, strict=True):
        for s, x, a in zip(sw2s, xis, accs, strict=True):
            if a is None:
                continue
            trained, predicted = a > 0.5, depth < 6 * x
            agree += trained == predicted
            total += 1
            rows.append(
                [
                    depth,
                    f"{s:g}",
                    f"{a:.3f}",
                    f"{6 * x:.0f}",
                    "yes" if trained == predicted else "NO",
                ]
            )
    share = agree / max(total, 1)
    fine = [1.0 + 3.0 * i / 80 for i in range(81)]
    curve = [6 * float(x) for x in xi_c("tanh", fine, SIGMA_B2)]
    fig = depth_figure(sw2s, depths, grid, (fine, curve), "tanh MLP: test accuracy; cyan: 6 xi_c")
    lines = [
        f"agreement of 'trained' (acc > 0.5) with depth < 6 xi_c: {agree}/{total} = {share:.0%}"
    ]
    (out / "edge_of_chaos.json").write_text(json.dumps(
        {"sigma_w2": sw2s, "depths": depths, "accuracy": grid, "xi_c": xis, "agreement": share},
        indent=1) + "\n")  # fmt: skip
    page = write_page(
        out / "criticality.html", "edge-of-chaos: trainable depth vs 6 xi_c",
        [("scale", f"width {width}, {steps} SGD steps, sigma_b^2 {SIGMA_B2}"), ("agreement", lines[0])],
        [("accuracy heat map with 6 xi_c", fig)],
        [("grid", ["depth", "sigma_w^2", "test acc", "6 xi_c", "agrees"], rows)],
    )  # fmt: skip
    return ChaosResult(out, lines, page)


def get_spec(text: str) -> str:
    """The canonical spelling compare gives an init spec."""
    return get(text).to_spec()


def _stack(width: int, depth: int, act: str) -> nn.Sequential:
    mods = [m for _ in range(depth) for m in (nn.Linear(width, width), resolve(act).module())]
    return nn.Sequential(*mods)


DI_INITS = {
    "tanh Gaussian (critical)": ("tanh", "critical:sigma_b2=0.0001"),
    "tanh orthogonal (critical)": ("tanh", "critical:sigma_b2=0.0001,distribution=orthogonal"),
    "ReLU He Gaussian": ("relu", "he_normal"),
    "ReLU He orthogonal": ("relu", "orthogonal:gain=1.4142135623730951"),
}


@preset(
    "dynamical-isometry",
    "Jacobian spectra at init of deep tanh (critical, Gaussian vs orthogonal) and ReLU nets by "
    "depth, then MNIST training speed (Pennington, Schoenholz and Ganguli 2017)",
    in_demo=False,
)
def dynamical_isometry(out: Path, quick: bool = False, progress=None):
    """Quick: width 100, depths 10/40, training depth 10, 200 steps (about 1 min). Full: width
    200, depths 10/50/100/200 (exact spectra, 2 inputs each), then depth-50 nets trained
    1,000 SGD steps, 2 seeds (estimated 15-20 min on 2 shared cores; the paper: width 1000)."""
    out = Path(out)
    width, depths = (100, [10, 40]) if quick else (200, [10, 50, 100, 200])
    point = critical_point("tanh", sigma_b2=1e-4)
    x = torch.randn(4, width, generator=torch.Generator().manual_seed(0))
    x = x * math.sqrt((point.q_star - 1e-4) / point.sigma_w2)
    rows, figures, data = [], [], []
    for depth in depths:
        spectra = {}
        for label, (act, spec) in DI_INITS.items():
            net = _stack(width, depth, act)
            init_(net, spec, generator=torch.Generator().manual_seed(depth))
            s = jacobian_spectrum(
                net, x if act == "tanh" else x / math.sqrt(point.q_star), n_inputs=2
            )
            spectra[label] = s.values
            data.append(
                {
                    "depth": depth,
                    "init": label,
                    **{k: v for k, v in s.to_dict().items() if k != "values"},
                }
            )
            rows.append(
                [
                    depth,
                    label,
                    f"{s.mean:.3g}",
                    f"{s.predicted_mean:.3g}",
                    f"{s.variance:.3g}",
                    f"{s.max:.3g}",
                ]
            )
        figures.append(
            (
                f"squared singular values of J, depth {depth}",
                spectrum_figure(spectra, f"depth {depth}"),
            )
        )
    tdepth, steps = (10, 200) if quick else (50, 1000)
    res = compare(
        out=out / "training", progress=progress, report=False, name="dynamical-isometry-training",
        dataset="mnist", arch=f"mlp:{width}x{tdepth}", activation="tanh",
        inits=["critical:sigma_b2=0.0001", "critical:sigma_b2=0.0001,distribution=orthogonal"],
        bias="critical:sigma_b2=0.0001", seeds=1 if quick else 2, optimizer="sgd", lr=0.01,
        batch_size=128, steps=steps, eval_every=max(steps // 4, 1),
    )  # fmt: skip
    acc = _acc(res)
    lines = [
        f"depth {r[0]:>3} {r[1]:28} mean {r[2]:>7} (mean field {r[3]}) var {r[4]:>8} max {r[5]}"
        for r in rows
    ]
    lines += [
        f"trained depth {tdepth}, {steps} steps: {k}: test acc {m:.3f} +- {ci:.3f}"
        for k, (m, ci) in acc.items()
    ]
    (out / "dynamical_isometry.json").write_text(
        json.dumps({"spectra": data, "training": acc}, indent=1) + "\n"
    )
    page = write_page(
        out / "criticality.html", "dynamical isometry: Jacobian spectra at init",
        [("scale", f"width {width}, depths {depths}, training depth {tdepth}, {steps} steps")],
        figures, [("spectra", ["depth", "init", "mean", "mean field", "variance", "max"], rows)], lines[-2:],
    )  # fmt: skip
    return ChaosResult(out, lines, page)


@preset(
    "deep-vanilla-cnn",
    "a vanilla tanh CNN of depth 100 (no BatchNorm, no skips) on MNIST: delta-orthogonal at "
    "criticality vs Gaussian (LeCun) vs He (Xiao et al. 2018)",
    in_demo=False,
)
def deep_vanilla_cnn(out: Path, quick: bool = False, progress=None):
    """Quick: depth 20, 8 channels, 150 steps, 1 seed (about 3 min). Full: depth 100, 8
    channels on 7 x 7 maps, 600 SGD steps lr 0.01 batch 64, 3 seeds x 3 inits (measured: 11
    min on 2 shared cores; delta-orthogonal 0.885 +- 0.042, LeCun 0.114, He 0.52 +- 0.32).
    The paper trains 10,000 layers with 256+ channels on GPUs for many epochs; 8 channels and
    600 steps are what 2 CPU cores allow."""
    out = Path(out)
    depth, channels, steps, seeds = (20, 8, 150, 1) if quick else (100, 8, 600, 3)
    res = compare(
        out=out, progress=progress, report=True, name="deep-vanilla-cnn", dataset="mnist",
        arch=f"initlab.experiments.presets_chaos:vanilla_cnn:depth={depth},channels={channels}",
        activation="tanh", inits=["delta_orthogonal", "lecun_normal", "he_normal"], seeds=seeds,
        optimizer="sgd", lr=0.01, batch_size=64, steps=steps, eval_every=max(steps // 3, 1),
    )  # fmt: skip
    acc = _acc(res)
    lines = [f"depth {depth}, {channels} channels, {steps} steps, {seeds} seed(s): {k}: test acc "
             f"{m:.3f} +- {ci:.3f} (95% CI)" for k, (m, ci) in acc.items()]  # fmt: skip
    return ChaosResult(out, lines, Path(out) / "report.html")
