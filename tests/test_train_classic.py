"""The classic experiment (Saito's notebook, chapter 6): std 0.01 vs LeCun vs He on MNIST."""

from __future__ import annotations

import statistics

import pytest

from initlab.data import load
from initlab.train import Member, train_members

INITS = ("normal:std=0.01", "lecun_normal", "he_normal")


@pytest.mark.slow
def test_he_trains_and_tiny_normal_stalls():
    records = train_members(
        [Member(init, seed) for init in INITS for seed in range(3)], data=load("mnist"),
        arch="mlp:100x4", activation="relu", optimizer="sgd", lr=0.01, batch_size=128,
        steps=2000, eval_every=500, target_loss=0.5,
    )  # fmt: skip
    by_init = {init: [r for r in records if r.config.init == init] for init in INITS}
    loss = {i: statistics.mean(r.final_train_loss for r in rs) for i, rs in by_init.items()}
    acc = {i: statistics.mean(r.test_accuracy for r in rs) for i, rs in by_init.items()}
    print(f"final train loss {loss}, test accuracy {acc}")
    assert all(r.status == "finished" for r in records)
    assert loss["he_normal"] < 0.3
    assert loss["normal:std=0.01"] > 2.2
    assert acc["he_normal"] >= 0.925
    assert loss["he_normal"] < loss["lecun_normal"] < loss["normal:std=0.01"]
