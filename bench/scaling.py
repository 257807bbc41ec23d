"""scaling: the stacked trainer's throughput vs K (models in the stack) and vs width,
against the lean loop (one model after another) and the fp32 ``torch.mm`` peak.

Throughput is useful GFLOP/s by the rule of :mod:`bench.grid` (matmul forward + backward
only), timed over the steps after a warm-up (through ``on_step``), 784-W x4-10 ReLU, batch
128, SGD. The lean loop's throughput does not depend on K (it trains one model at a time),
so it is measured once per width. Writes a table and ``bench/scaling.png``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.common import Result, StepWindow
from bench.gemm_efficiency import mm_peak
from bench.grid import BATCH, INITS, LR

NAME = "scaling"
TARGET = "report (throughput vs K and width)"
PNG = Path(__file__).with_name("scaling.png")
KS = (1, 2, 4, 8, 16, 25, 32, 64)
WIDTHS = (64, 128, 256, 512, 1024)
WIDTH_K = 8  # stack size of the width curve
WORK = 40e9  # useful FLOPs timed per point: about a second at this machine's peak


def flops_per_step(width: int) -> int:
    """Useful FLOPs of one model's step of 784-W x4-10 (see :mod:`bench.grid`)."""
    layers = [(784, width), (width, width), (width, width), (width, width), (width, 10)]
    return sum(6 * BATCH * i * o for i, o in layers) - 2 * BATCH * 784 * width


def _steps(flops: float, lo: int = 4, hi: int = 60) -> int:
    return max(lo, min(hi, math.ceil(WORK / flops)))


def stack_gflops(data, k: int, width: int, skip: int = 3) -> float:
    """Useful GFLOP/s of a stack of ``k`` models (inits cycled, seeds counted up)."""
    from initlab.train import Member, train_members

    members = [Member(INITS[i % len(INITS)], i // len(INITS)) for i in range(k)]
    steps = skip + 1 + _steps(flops_per_step(width) * k)
    window = StepWindow(skip, steps - 1)  # the last step ends with an evaluation
    train_members(members, data=data, arch=f"mlp:{width}x4", activation="relu",
                  optimizer="sgd", lr=LR, batch_size=BATCH, steps=steps, eval_every=None,
                  target_loss=0.5, on_step=window)  # fmt: skip
    return flops_per_step(width) * k / window.per_step / 1e9


def lean_gflops(data, width: int, skip: int = 3) -> float:
    """Useful GFLOP/s of the lean loop: one model, preloaded tensors, index batches."""
    from initlab.models import build

    model = build(f"mlp:{width}x4", activation="relu", in_shape=data.in_shape, n_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=LR, foreach=True)
    x, y = data.train.features(), data.train.y
    steps = _steps(flops_per_step(width))
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(len(y), (skip + steps, BATCH), generator=g)
    for i, batch in enumerate(idx):
        if i == skip:
            started = time.perf_counter()
        loss = F.cross_entropy(model(x[batch]), y[batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return flops_per_step(width) * steps / (time.perf_counter() - started) / 1e9


def measure() -> dict:
    """Both curves, the lean loop per width and the peak (measured before and after)."""
    from initlab.data import load

    data = load("mnist")
    peak = mm_peak() / 1e9
    by_k = {k: stack_gflops(data, k, 100) for k in KS}
    lean = {w: lean_gflops(data, w) for w in WIDTHS}
    lean_100 = lean_gflops(data, 100)
    by_w = {w: stack_gflops(data, WIDTH_K, w) for w in WIDTHS}
    peak = max(peak, mm_peak() / 1e9)
    return {"peak": peak, "by_k": by_k, "by_width": by_w, "lean": lean, "lean_100": lean_100}


def plot(m: dict, path: Path = PNG) -> Path:
    """Two panels: GFLOP/s vs K (width 100) and vs width (K = WIDTH_K), with the lean loop
    and the peak drawn as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, xs, ys, lean, label in (
        (a, list(m["by_k"]), list(m["by_k"].values()), [m["lean_100"]] * len(m["by_k"]),
         "K (models)"),
        (b, list(m["by_width"]), list(m["by_width"].values()), list(m["lean"].values()),
         "width"),
    ):  # fmt: skip
        ax.plot(xs, ys, "o-", label="initlab stack")
        if lean:
            ax.plot(xs, lean, "s--", label="lean loop")
        ax.axhline(m["peak"], color="k", ls=":", label="torch.mm peak")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.set_ylabel("useful GFLOP/s")
        ax.set_ylim(0, m["peak"] * 1.1)
        ax.legend()
    a.set_title("784-100x4-10, vs stack size")
    b.set_title(f"784-Wx4-10, K = {WIDTH_K}, vs width")
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def table(m: dict) -> str:
    """The two curves as Markdown tables (GFLOP/s and fraction of the peak)."""
    peak = m["peak"]
    lean = m["lean_100"]
    lines = ["| K (width 100) | initlab GFLOP/s | vs lean loop | of peak |", "|---|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {v / lean:.2f}x | {v / peak:.0%} |" for k, v in m["by_k"].items()]
    lines += ["", f"| width (K = {WIDTH_K}) | initlab GFLOP/s | lean loop GFLOP/s | ratio | "
              "initlab of peak |", "|---|---|---|---|---|"]  # fmt: skip
    for w, v in m["by_width"].items():
        lean = m["lean"][w]
        lines.append(f"| {w} | {v:.1f} | {lean:.1f} | {v / lean:.2f}x | {v / peak:.0%} |")
    return "\n".join(lines)


def run(quick: bool = True) -> Result:
    """Entry for ``python -m bench`` (the same size in both modes)."""
    m = measure()
    plot(m)
    at25, lean = m["by_k"][25], m["lean_100"]
    notes = [f"K = 25 stack vs the lean loop, width 100; fp32 torch.mm peak {m['peak']:.1f} "
             f"GFLOP/s; curves in the Scaling section"]  # fmt: skip
    section = (f"## Scaling\n\nUseful GFLOP/s (matmul forward + backward, bench/grid.py's rule); "
               f"the lean loop at width 100: {lean:.1f} GFLOP/s; fp32 torch.mm peak "
               f"{m['peak']:.1f} GFLOP/s.\n\n![scaling](bench/{PNG.name})\n\n" + table(m))  # fmt: skip
    return Result(at25, lean, at25 / lean, True, unit="GFLOP/s", notes=notes, sections=[section])
