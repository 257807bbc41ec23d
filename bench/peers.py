"""The plain-PyTorch peers that initlab's trainer is measured against, one model after another.

* ``dataloader``: the seed tutorial's way: ``DataLoader`` over a ``TensorDataset`` (shuffled,
  drop_last), ``torch.optim.SGD``, ``loss.item()`` logged each step.
* ``lean``: what a careful user writes: the tensors preloaded, a ``randperm`` per epoch from a
  seeded generator, batches taken by index, the losses kept on the device in one
  preallocated tensor (one host sync at the end), ``SGD(foreach=True)``.

Both do the work ``initlab compare`` does for the same grid: train loss recorded every step,
validation and test loss/accuracy every ``eval_every`` steps and at the end, the same
initial weights (``initlab.init_`` with the trainer's generators), the same thread count.

Run as a whole process (that is what ``bench.compare_vs_loop`` times)::

    python -m bench.peers lean --inits he_normal,lecun_normal --seeds 5 --steps 2000

It prints one JSON line: training-only seconds and each run's test accuracy.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import initlab
from initlab.data import load
from initlab.models import build
from initlab.train import init_generator

PEERS = ("dataloader", "lean")


def _evaluate(model, features, labels) -> tuple[float, float]:
    with torch.no_grad():
        model.eval()
        logits = model(features)
        loss = F.cross_entropy(logits, labels)
        acc = (logits.argmax(1) == labels).float().mean()
        model.train()
    return loss, acc


def _model(init: str, seed: int, arch: str, activation: str, data):
    model = build(arch, activation=activation, in_shape=data.in_shape, n_classes=data.n_classes)
    canonical = initlab.get(init).to_spec()
    initlab.init_(model, init, generator=init_generator(canonical, seed))
    return model


def train_dataloader(model, data, *, steps, batch_size, lr, eval_every, seed) -> float:
    """The tutorial loop; returns the final test accuracy."""
    x_val, y_val = data.val.features(), data.val.y
    x_test, y_test = data.test.features(), data.test.y
    loader = DataLoader(
        TensorDataset(data.train.features(), data.train.y), batch_size=batch_size,
        shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses: list[float] = []
    evals = []
    while len(losses) < steps:
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step = len(losses)
            if step % eval_every == 0 or step == steps:
                evals.append([float(v) for v in (*_evaluate(model, x_val, y_val),
                                                 *_evaluate(model, x_test, y_test))])  # fmt: skip
            if step == steps:
                break
    return evals[-1][3]


def train_lean(model, data, *, steps, batch_size, lr, eval_every, seed, device="cpu") -> float:
    """The lean loop (the tensors on ``device``, as the model); returns the final test
    accuracy."""
    x, y = data.train.features().to(device), data.train.y.to(device)
    x_val, y_val = data.val.features().to(device), data.val.y.to(device)
    x_test, y_test = data.test.features().to(device), data.test.y.to(device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, foreach=True)
    losses = torch.empty(steps, device=device)
    evals = []
    per_epoch = len(y) // batch_size
    order = torch.randperm(len(y), generator=gen).to(device)
    for step in range(1, steps + 1):
        i = (step - 1) % per_epoch
        if i == 0 and step > 1:
            order = torch.randperm(len(y), generator=gen).to(device)
        idx = order[i * batch_size : (i + 1) * batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[step - 1] = loss.detach()
        if step % eval_every == 0 or step == steps:
            evals.append(torch.stack([*_evaluate(model, x_val, y_val),
                                      *_evaluate(model, x_test, y_test)]))  # fmt: skip
    return float(torch.stack(evals)[-1, 3])  # the one host sync of the run


def run_peer(peer: str, *, inits, seeds, steps, arch="mlp:100x4", activation="relu",
             batch_size=128, lr=0.01, eval_every=500, dataset="mnist") -> dict:  # fmt: skip
    """Train every (init, seed) with ``peer``, one after another; seconds and accuracies."""
    train = {"dataloader": train_dataloader, "lean": train_lean}[peer]
    data = load(dataset)
    accs: dict[str, list[float]] = {}
    started = time.perf_counter()
    for init in inits:
        for seed in range(seeds):
            model = _model(init, seed, arch, activation, data)
            accs.setdefault(init, []).append(
                train(
                    model,
                    data,
                    steps=steps,
                    batch_size=batch_size,
                    lr=lr,
                    eval_every=eval_every,
                    seed=seed,
                )  # fmt: skip
            )
    return {"train_s": time.perf_counter() - started, "test_acc": accs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=PEERS)
    parser.add_argument("--inits", required=True, help="comma-separated init specs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run_peer(args.peer, inits=args.inits.split(","), seeds=args.seeds,
                      steps=args.steps, eval_every=args.eval_every)  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
