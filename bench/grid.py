"""The classic grid every training benchmark uses: 784-100x4-10 ReLU on MNIST, SGD 0.01.

Useful FLOPs per model and step (the rule BENCHMARKS.md states): 2*B*in*out for each
layer's forward matmul, 4*B*in*out for its backward (input and weight gradients), except the
first layer's backward, which needs no input gradient (2*B*in*out). Element-wise work, the
loss and the optimizer are not counted.
"""

from __future__ import annotations

import time

INITS = ("normal:std=0.01", "lecun_normal", "xavier_normal", "he_normal", "orthogonal")
SEEDS = 5
ARCH, BATCH, LR = "mlp:100x4", 128, 0.01
LAYERS = [(784, 100), (100, 100), (100, 100), (100, 100), (100, 10)]
FLOPS_PER_STEP = sum(6 * BATCH * i * o for i, o in LAYERS) - 2 * BATCH * 784 * 100


def stacked(data, steps: int, precision: str = "fp32"):
    """All 25 models in one stack, in this process: (seconds, init -> [(loss, test acc)])."""
    from initlab.train import Member, train_members
    from initlab.train.controls import TrainControls

    members = [Member(init, seed) for init in INITS for seed in range(SEEDS)]
    started = time.perf_counter()
    records = train_members(
        members, data=data, arch=ARCH, activation="relu", optimizer="sgd", lr=LR,
        batch_size=BATCH, steps=steps, eval_every=None, target_loss=0.5,
        controls=TrainControls(precision=precision),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    results: dict[str, list[tuple[float, float]]] = {}
    for member, record in zip(members, records, strict=True):
        results.setdefault(member.init, []).append((record.final_train_loss, record.test_accuracy))
    return seconds, results
