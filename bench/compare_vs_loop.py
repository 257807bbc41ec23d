"""compare-vs-loop: 5 inits x 5 seeds of the classic MNIST experiment, two ways, one process.

* initlab: the stacked trainer (``initlab.train.train_members``), all 25 models in one stack.
* baseline: the plain PyTorch loop a user would write: ``DataLoader`` over a
  ``TensorDataset``, ``nn.Sequential``, ``torch.optim.SGD``, ``loss.item()`` logged each
  step, one model after another.

Both use 784-100x4-10 ReLU, batch 128, SGD lr 0.01, 2,000 steps (``--quick``: 200), the same
initial weights, the same thread count, and evaluate validation and test once at the end.
Prints both wall times and the speed ratio (target >= 3x, stretch 5x).

    python bench/compare_vs_loop.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import initlab
from initlab.data import load
from initlab.models import build
from initlab.train import Member, init_generator, train_members

NAME = "compare-vs-loop"
TARGET = ">= 3x (stretch 5x)"

INITS = ("normal:std=0.01", "lecun_normal", "xavier_normal", "he_normal", "orthogonal")
SEEDS = 5
ARCH, BATCH, LR = "mlp:100x4", 128, 0.01
# forward 2*B*in*out per layer; backward 4*B*in*out except the first layer (no input grad)
LAYERS = [(784, 100), (100, 100), (100, 100), (100, 100), (100, 10)]
FLOPS_PER_STEP = sum(6 * BATCH * i * o for i, o in LAYERS) - 2 * BATCH * 784 * 100


def baseline(data, steps: int) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """The plain loop, one model after another; returns (seconds, init -> [(loss, acc)])."""
    x_train = data.train.features()
    x_test, y_test = data.test.features(), data.test.y
    x_val, y_val = data.val.features(), data.val.y
    results: dict[str, list[tuple[float, float]]] = {}
    started = time.perf_counter()
    for init in INITS:
        canonical = initlab.get(init).to_spec()
        for seed in range(SEEDS):
            model = build(ARCH, activation="relu", in_shape=data.in_shape, n_classes=10)
            initlab.init_(model, init, generator=init_generator(canonical, seed))
            loader = DataLoader(
                TensorDataset(x_train, data.train.y), batch_size=BATCH, shuffle=True,
                drop_last=True, generator=torch.Generator().manual_seed(seed),
            )  # fmt: skip
            opt = torch.optim.SGD(model.parameters(), lr=LR)
            losses: list[float] = []
            while len(losses) < steps:
                for xb, yb in loader:
                    loss = F.cross_entropy(model(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    losses.append(loss.item())
                    if len(losses) == steps:
                        break
            with torch.no_grad():
                model.eval()
                F.cross_entropy(model(x_val), y_val)  # the same evaluation work as initlab's
                acc = (model(x_test).argmax(1) == y_test).float().mean().item()
            tail = losses[-100:]
            results.setdefault(init, []).append((sum(tail) / len(tail), acc))
    return time.perf_counter() - started, results


def stacked(data, steps: int) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """All 25 models in one stack; returns (seconds, init -> [(loss, acc)])."""
    members = [Member(init, seed) for init in INITS for seed in range(SEEDS)]
    started = time.perf_counter()
    records = train_members(
        members, data=data, arch=ARCH, activation="relu", optimizer="sgd", lr=LR,
        batch_size=BATCH, steps=steps, eval_every=None, target_loss=0.5,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    results: dict[str, list[tuple[float, float]]] = {}
    for member, record in zip(members, records, strict=True):
        results.setdefault(member.init, []).append((record.final_train_loss, record.test_accuracy))
    return seconds, results


def measure(quick: bool = False) -> dict[str, float]:
    """Run both sides once (initlab first, so neither warms the other's caches unfairly)."""
    steps = 200 if quick else 2000
    data = load("mnist")
    train_members([Member("he_normal", 0)], data=data, arch=ARCH, activation="relu",
                optimizer="sgd", lr=LR, batch_size=BATCH, steps=2, eval_every=None,
                target_loss=0.5)  # warm-up: one-time imports and allocator  # fmt: skip
    ours, our_results = stacked(data, steps)
    theirs, their_results = baseline(data, steps)
    for init in INITS:
        a, b = our_results[init], their_results[init]
        print(
            f"  {init:16s} final loss {statistics.mean(r[0] for r in a):.3f} vs "
            f"{statistics.mean(r[0] for r in b):.3f}, test acc "
            f"{statistics.mean(r[1] for r in a):.4f} vs {statistics.mean(r[1] for r in b):.4f}"
        )
    useful = FLOPS_PER_STEP * steps * len(INITS) * SEEDS
    return {
        "initlab_s": ours, "baseline_s": theirs, "ratio": theirs / ours,
        "initlab_gflops": useful / ours / 1e9, "baseline_gflops": useful / theirs / 1e9,
        "steps": steps, "threads": torch.get_num_threads(),
    }  # fmt: skip


def run(quick: bool = True):
    """Entry for ``python -m bench``."""
    from bench.common import Result

    r = measure(quick)
    notes = [f"{len(INITS)} inits x {SEEDS} seeds, {r['steps']} steps, {r['threads']} threads",
             f"useful GFLOP/s {r['initlab_gflops']:.1f} vs {r['baseline_gflops']:.1f}"]  # fmt: skip
    return Result(r["initlab_s"], r["baseline_s"], r["ratio"], r["ratio"] >= 3, notes=notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 steps instead of 2,000")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    r = measure(args.quick)
    print(
        f"compare-vs-loop ({len(INITS)} inits x {SEEDS} seeds, {r['steps']} steps, "
        f"{r['threads']} threads): initlab {r['initlab_s']:.1f} s ({r['initlab_gflops']:.1f} "
        f"GFLOP/s useful), plain loop {r['baseline_s']:.1f} s ({r['baseline_gflops']:.1f} "
        f"GFLOP/s); speed ratio {r['ratio']:.2f}x (target 3x, stretch 5x)"
    )


if __name__ == "__main__":
    main()
