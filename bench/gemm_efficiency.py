"""gemm-efficiency: the stacked trainer's useful FLOP/s over the machine's best ``torch.mm``.

Useful FLOPs per model and step (the compare-vs-loop grid, 784-100x4-10, batch 128):
2*B*in*out for each layer's forward, 4*B*in*out for each backward except the first
layer's, which needs no input gradient (2*B*in*out). Only the steps themselves are timed
(through ``on_step``), not setup or evaluation. The peak is the best ``torch.mm`` FLOP/s
on large square fp32 matrices measured in the same run, with the same threads. Target >= 60%.
"""

from __future__ import annotations

import torch

from bench.common import Result, StepWindow, best_of
from bench.grid import ARCH, BATCH, FLOPS_PER_STEP, INITS, LR, SEEDS
from initlab.data import load
from initlab.train import Member, train_members

NAME = "gemm-efficiency"
TARGET = ">= 60% of torch.mm peak at K = 25"


def mm_peak(sizes: tuple[int, ...] = (1024, 2048, 3072), repeat: int = 3) -> float:
    """Best FLOP/s of ``torch.mm`` on n x n fp32 matrices (inputs from a fixed generator)."""
    g = torch.Generator().manual_seed(0)
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)  # warm-up
        seconds = best_of(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), repeat)
        best = max(best, 2 * n**3 / seconds)
    return best


def trainer_flops(data, steps: int, skip: int = 5) -> float:
    """Useful FLOP/s of the stacked trainer over steps ``skip+1 .. steps``."""
    # steps - 1 ends before the last step, whose final evaluation is not training work
    window = StepWindow(skip, steps - 1)
    members = [Member(init, seed) for init in INITS for seed in range(SEEDS)]
    train_members(
        members, data=data, arch=ARCH, activation="relu", optimizer="sgd", lr=LR,
        batch_size=BATCH, steps=steps, eval_every=None, target_loss=0.5, on_step=window,
    )  # fmt: skip
    return FLOPS_PER_STEP * len(members) / window.per_step


def run(quick: bool = True) -> Result:
    """Entry for ``python -m bench``: 100 timed-window steps in quick mode, 500 in full."""
    data = load("mnist")
    steps = 100 if quick else 500
    peak = mm_peak()
    ours = max(trainer_flops(data, steps) for _ in range(2))
    peak = max(peak, mm_peak())  # measure the peak again: the machine is shared
    ratio = ours / peak
    notes = [
        f"trainer {ours / 1e9:.1f} GFLOP/s useful (25 models, {steps} steps) vs "
        f"torch.mm peak {peak / 1e9:.1f} GFLOP/s; {torch.get_num_threads()} threads",
        "columns: GFLOP/s; ratio = fraction of peak",
    ]
    return Result(ours / 1e9, peak / 1e9, ratio, ratio >= 0.6, unit="GFLOP/s", notes=notes)
