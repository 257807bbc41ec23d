"""compare-vs-numpy: the compare-vs-loop grid against a from-scratch NumPy implementation.

The baseline is written the way textbook code does it: layer objects with ``forward`` and
``backward``, float64 arrays, softmax cross-entropy by hand, plain SGD, one model after
another. Both sides start from the same initial weights (drawn by initlab, copied to
float64) and train 784-100x4-10 ReLU, batch 128, SGD lr 0.01 on MNIST. Target >= 8x.
"""

from __future__ import annotations

import time

import numpy as np

import initlab
from bench import grid
from bench.common import Result
from bench.grid import ARCH, BATCH, INITS, LR, SEEDS
from initlab.data import load
from initlab.models import build
from initlab.train import init_generator

NAME = "compare-vs-numpy"
TARGET = ">= 8x"


class Linear:
    """y = x W^T + b, keeping its input for the backward pass."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.W, self.b = weight, bias

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.W.T + self.b

    def backward(self, grad: np.ndarray) -> np.ndarray:
        self.dW = grad.T @ self.x
        self.db = grad.sum(axis=0)
        return grad @ self.W

    def step(self, lr: float) -> None:
        self.W -= lr * self.dW
        self.b -= lr * self.db


class ReLU:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self.mask

    def step(self, lr: float) -> None:
        pass


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean loss and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(p[np.arange(n), y]).mean()
    p[np.arange(n), y] -= 1.0
    return float(loss), p / n


def numpy_layers(init: str, seed: int, in_shape: tuple[int, ...]) -> list:
    """The initlab-initialised torch model's weights as float64 textbook layers."""
    model = build(ARCH, activation="relu", in_shape=in_shape, n_classes=10)
    canonical = initlab.get(init).to_spec()
    initlab.init_(model, init, generator=init_generator(canonical, seed))
    layers: list = []
    for module in model.modules():
        if hasattr(module, "weight") and module.weight is not None:
            w = module.weight.detach().double().numpy().copy()
            layers.append(Linear(w, module.bias.detach().double().numpy().copy()))
            layers.append(ReLU())
    return layers[:-1]  # no ReLU after the output layer


def baseline(data, steps: int) -> tuple[float, float]:
    """Train every (init, seed) one after another; returns (seconds, mean test accuracy)."""
    x = data.train.features().reshape(len(data.train), -1).double().numpy()
    y = data.train.y.numpy()
    x_test = data.test.features().reshape(len(data.test), -1).double().numpy()
    y_test = data.test.y.numpy()
    accs = []
    started = time.perf_counter()
    for init in INITS:
        for seed in range(SEEDS):
            layers = numpy_layers(init, seed, data.in_shape)
            rng = np.random.default_rng(seed)
            order, pos = rng.permutation(len(y)), 0
            for _ in range(steps):
                if pos + BATCH > len(order):
                    order, pos = rng.permutation(len(y)), 0
                batch = order[pos : pos + BATCH]
                pos += BATCH
                h = x[batch]
                for layer in layers:
                    h = layer.forward(h)
                _, grad = softmax_cross_entropy(h, y[batch])
                for layer in reversed(layers):
                    grad = layer.backward(grad)
                for layer in layers:
                    layer.step(LR)
            h = x_test
            for layer in layers:
                h = layer.forward(h)
            accs.append(float((h.argmax(1) == y_test).mean()))
    return time.perf_counter() - started, float(np.mean(accs))


def stacked(data, steps: int) -> tuple[float, float]:
    """The same stacked run as compare-vs-loop; returns (seconds, mean test accuracy)."""
    seconds, results = grid.stacked(data, steps)
    return seconds, float(np.mean([acc for runs in results.values() for _, acc in runs]))


def run(quick: bool = True) -> Result:
    """Entry for ``python -m bench``: 100 steps in quick mode, 2,000 in full."""
    steps = 100 if quick else 2000
    data = load("mnist")
    stacked(data, 2)  # warm-up: one-time imports and allocator
    ours, our_acc = stacked(data, steps)
    theirs, their_acc = baseline(data, steps)
    ratio = theirs / ours
    useful = grid.FLOPS_PER_STEP * steps * len(INITS) * SEEDS
    notes = [
        f"{len(INITS)} inits x {SEEDS} seeds, {steps} steps",
        f"mean test acc {our_acc:.4f} (initlab fp32) vs {their_acc:.4f} (numpy fp64)",
        f"useful GFLOP/s {useful / ours / 1e9:.1f} vs {useful / theirs / 1e9:.1f} (both times "
        "include setup and evaluation); 8x needs the stacked trainer near 70% of the "
        "torch.mm peak (gemm-efficiency)",
    ]
    return Result(ours, theirs, ratio, ratio >= 8, notes=notes)
