"""The stacked trainer against a plain nn.Sequential + torch.optim loop: same numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.data import load
from initlab.train import BatchOrder, Member, init_generator, train_members

STEPS, BATCH, SEED = 100, 64, 3


pytestmark = pytest.mark.usefixtures("one_thread")


def plain_loop(data, optimizer: str, lr: float) -> list[float]:
    """He init, seed 3, trained alone: the textbook PyTorch loop."""
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
        nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
        nn.Linear(100, 10),
    )  # fmt: skip
    initlab.init_(model, "he_normal", generator=init_generator("he_normal", SEED))
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer](model.parameters(), lr=lr)
    order = BatchOrder([SEED], n=len(data.train), batch_size=BATCH)
    losses = []
    for step in range(STEPS):
        idx = order.indices(step)[0]
        loss = F.cross_entropy(model(data.train.features(idx)), data.train.labels(idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.01), ("adam", 1e-3)])
def test_stack_of_8_matches_plain_loop_at_every_step(optimizer, lr):
    data = load("mnist")
    inits = ["lecun_normal", "normal:std=0.01", "xavier_uniform", "he_normal", "orthogonal",
             "he_uniform", "lecun_uniform", "xavier_normal"]  # fmt: skip
    records = train_members(
        [Member(init, SEED) for init in inits], data=data, arch="mlp:100x4", activation="relu",
        optimizer=optimizer, lr=lr, batch_size=BATCH, steps=STEPS, eval_every=None,
        target_loss=0.5,
    )  # fmt: skip
    stacked = torch.tensor(records[3].metrics["train_loss"].values, dtype=torch.float64)
    alone = torch.tensor(plain_loop(data, optimizer, lr), dtype=torch.float64)
    assert len(stacked) == len(alone) == STEPS
    relative = (stacked - alone).abs() / alone.abs()
    assert float(relative.max()) < 1e-5, f"max relative difference {float(relative.max()):.2e}"
    assert alone[-10:].mean() < alone[:10].mean() - 0.5  # it really trained
