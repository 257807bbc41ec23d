"""The classic grid on a CUDA GPU: initlab's stacked trainer in fp32 and bf16 at K = 25 and
K = 100 models, against the lean loop (``bench.peers``) on the same GPU.

    python -m bench.gpu_grid --out gpu-figures.md [--steps 2000]

Writes a Markdown table (device named) for BENCHMARKS.md; says so and exits 0 without a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.grid import ARCH, BATCH, FLOPS_PER_STEP, INITS, LR


def _stack(data, seeds: int, steps: int, precision: str) -> tuple[float, float]:
    """Seconds and mean test accuracy of ``len(INITS) * seeds`` models in one stack."""
    from initlab.train import Member, train_members
    from initlab.train.controls import TrainControls

    members = [Member(i, s) for i in INITS for s in range(seeds)]
    run = dict(data=data, arch=ARCH, activation="relu", optimizer="sgd", lr=LR,
               batch_size=BATCH, eval_every=500, target_loss=0.5, device="cuda",
               controls=TrainControls(precision=precision))  # fmt: skip
    train_members(members[:2], steps=5, **run)  # warm-up: CUDA context, kernels
    torch.cuda.synchronize()
    started = time.perf_counter()
    records = train_members(members, steps=steps, **run)
    torch.cuda.synchronize()
    return time.perf_counter() - started, statistics.mean(r.test_accuracy for r in records)


def _lean(data, models: int, steps: int) -> float:
    """Seconds of the lean loop for ``models`` models, one after another, on the GPU."""
    from bench.peers import _model, train_lean

    started = time.perf_counter()
    for k in range(models):
        model = _model(INITS[k % len(INITS)], k // len(INITS), ARCH, "relu", data).cuda()
        train_lean(
            model, data, steps=steps, batch_size=BATCH, lr=LR, eval_every=500, seed=k, device="cuda"
        )
    torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-figures.md"))
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench.gpu_grid: no CUDA GPU found (torch.cuda.is_available() is False); nothing run")
        return 0
    from initlab.data import load

    data = load("mnist")
    name = torch.cuda.get_device_name(0)
    rows = []
    lean_s = _lean(data, 5, args.steps)  # 5 models: the loop's per-model cost is flat
    for seeds in (5, 20):
        k = len(INITS) * seeds
        for precision in ("fp32", "bf16"):
            s, acc = _stack(data, seeds, args.steps, precision)
            lean_k = lean_s / 5 * k
            tflops = FLOPS_PER_STEP * k * args.steps / s / 1e12
            rows.append(f"| {k} | {precision} | {s:.2f} s | {tflops:.2f} | {acc:.4f} | "
                        f"{lean_k:.1f} s | {lean_k / s:.1f}x |")  # fmt: skip
            print(rows[-1], flush=True)
    text = (f"GPU: {name}; torch {torch.__version__}; {args.steps} steps, batch {BATCH}, "
            "SGD 0.01, 784-100x4-10 ReLU\n\n"
            "| K | precision | initlab | useful TFLOP/s | mean test acc | lean loop (K models, "
            "from 5 timed) | ratio |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")  # fmt: skip
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
