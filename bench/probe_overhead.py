"""probe-overhead: a training step of the classic MLP under ``watch`` vs without.

The classic MLP is 784-100x4-10 ReLU on MNIST batches of 128 with SGD lr 0.01. The three
variants (no watch, ``watch(every=1)``, ``watch(every=10)``) are timed in interleaved rounds,
best of the rounds, so machine noise hits all alike. Here the ratio column is the overhead
factor (watched time / plain time; lower is better). Targets: <= 2x every step, <= 1.15x
every 10 steps.
"""

from __future__ import annotations

import contextlib
import time

import torch
import torch.nn.functional as F

import initlab
from bench.common import Result
from bench.grid import ARCH, BATCH, LR
from initlab.data import load
from initlab.models import build
from initlab.probe import watch
from initlab.train import init_generator

NAME = "probe-overhead"
TARGET = "<= 2x (every step), <= 1.15x (every 10)"


def timed_steps(model, batches, every: int | None) -> float:
    """Seconds for one SGD step per batch, with ``watch(model, every)`` open (None: no watch)."""
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    ctx = watch(model, every=every) if every else contextlib.nullcontext()
    with ctx:
        started = time.perf_counter()
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return time.perf_counter() - started


def run(quick: bool = True) -> Result:
    """Entry for ``python -m bench``: 100 steps x 3 rounds in quick mode, 500 x 5 in full."""
    data = load("mnist")
    steps, rounds = (100, 3) if quick else (500, 5)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(len(data.train), (steps, BATCH), generator=g)
    batches = [(data.train.features(i), data.train.labels(i)) for i in idx]
    model = build(ARCH, activation="relu", in_shape=data.in_shape, n_classes=10)
    initlab.init_(model, "he_normal", generator=init_generator("he_normal", 0))
    best = {None: float("inf"), 1: float("inf"), 10: float("inf")}
    timed_steps(model, batches[:10], None)  # warm-up
    for _ in range(rounds):
        for every in best:
            best[every] = min(best[every], timed_steps(model, batches, every))
    every1, every10 = best[1] / best[None], best[10] / best[None]
    ms = 1000 / steps
    notes = [
        f"per step: plain {best[None] * ms:.2f} ms, every step {best[1] * ms:.2f} ms, "
        f"every 10 {best[10] * ms:.2f} ms; every-10 overhead {every10:.2f}x",
        "initlab = watch every step; ratio = overhead (lower is better)",
        f"a sampled step costs {(best[1] - best[None]) * ms:.2f} ms more: per-layer reductions "
        "(moments, histogram, quantiles; 9 outputs, 14 gradients) and the mean-field "
        "prediction; steps in between run without layer hooks",
    ]
    met = every1 <= 2 and every10 <= 1.15
    return Result(best[1] * ms, best[None] * ms, every1, met, unit="ms/step", notes=notes)
