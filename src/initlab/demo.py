"""``make demo``: initialize the classic MNIST MLP with ``auto`` and print what was done.

Later parts of initlab (compare, presets, reports) extend this into the seed experiments.
"""

from __future__ import annotations

import torch
from torch import nn

import initlab


def main() -> None:
    sizes = [784, 100, 100, 100, 100, 10]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    report = initlab.init_(model, "auto", generator=torch.Generator().manual_seed(0))
    report.print()


if __name__ == "__main__":
    main()
