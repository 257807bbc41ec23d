"""bf16: the classic grid (25 models in one stack) in bf16 autocast vs fp32, speed and accuracy.

Where the CPU has a bf16 matmul path (AVX-512 BF16 / AMX; ``torch.ops.mkldnn.
_is_mkldnn_bf16_supported()``), both precisions train the whole grid in interleaved rounds
and the mean test accuracy per init is compared. Without one, bf16 matmuls are emulated:
then only a short timed window of each is run (the full bf16 grid would take many times
the fp32 one) and the table says so. Target: bf16 >= 2x fp32, accuracy within 0.5 pt.
"""

from __future__ import annotations

import statistics

import torch

from bench.common import Result, StepWindow
from bench.grid import ARCH, BATCH, INITS, LR, SEEDS, stacked

NAME = "bf16"
TARGET = ">= 2x fp32, test acc per init within 0.5 pt"


def window(data, precision: str, steps: int = 12, skip: int = 2) -> float:
    """Seconds per step of the 25-model stack over ``steps - skip`` steps (no evaluation)."""
    from initlab.train import Member, train_members
    from initlab.train.controls import TrainControls

    window = StepWindow(skip, steps - 1)  # steps - 1: the last step ends with an evaluation
    members = [Member(i, s) for i in INITS for s in range(SEEDS)]
    train_members(members, data=data, arch=ARCH, activation="relu", optimizer="sgd", lr=LR,
                  batch_size=BATCH, steps=steps, eval_every=None, target_loss=0.5,
                  on_step=window, controls=TrainControls(precision=precision))  # fmt: skip
    return window.per_step


def run(quick: bool = True) -> Result:
    """Entry for ``python -m bench``: 200 steps x 2 rounds in quick mode, 2,000 in full."""
    from initlab.data import load

    data = load("mnist")
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        fp32, bf16 = window(data, "fp32"), window(data, "bf16", steps=5, skip=1)
        notes = [f"no bf16 hardware path on this CPU ({torch.backends.cpu.get_cpu_capability()}): "
                 f"bf16 autocast is emulated, {bf16 * 1e3:.0f} ms per stacked step vs fp32 "
                 f"{fp32 * 1e3:.0f} ms; accuracy not measured (the bf16 grid would take "
                 f"{bf16 / fp32:.0f}x the fp32 one)"]  # fmt: skip
        return Result(bf16 * 1e3, fp32 * 1e3, fp32 / bf16, False, unit="ms/step", notes=notes)
    steps = 200 if quick else 2000
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    accs: dict[str, dict[str, float]] = {}
    for _ in range(2):
        for precision in times:
            seconds, results = stacked(data, steps, precision)
            times[precision].append(seconds)
            accs[precision] = {i: statistics.mean(a for _, a in r) for i, r in results.items()}
    fp32, bf16 = min(times["fp32"]), min(times["bf16"])
    gaps = {i: 100 * (accs["bf16"][i] - accs["fp32"][i]) for i in INITS}
    notes = [f"25 models x {steps} steps, best of 2 interleaved rounds",
             "test acc bf16 - fp32 (pt): " + ", ".join(f"{i} {g:+.2f}" for i, g in gaps.items())]  # fmt: skip
    met = fp32 / bf16 >= 2 and all(abs(g) <= 0.5 for g in gaps.values())
    return Result(bf16, fp32, fp32 / bf16, met, notes=notes)
