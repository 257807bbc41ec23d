"""A residual MLP: ``x + f(x)`` blocks, with optional BatchNorm, gate and Fixup scalars.

Each block's branch is ``Linear -> activation -> Linear`` (then ``BatchNorm1d`` with
``norm="batchnorm"``), so the residual stream is never passed through a nonlinearity and its
variance at init shows exactly what the branches add. ``gate=True`` multiplies each branch by
a scalar parameter (SkipInit / ReZero), ``scalars=True`` adds Fixup's scalar biases before
each layer and activation and a scalar multiplier on the branch.

>>> model = residual_mlp(depth=3, width=16, in_features=784, out_features=10)
>>> model(torch.zeros(2, 784)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from initlab.activations import resolve
from initlab.errors import InitSpecError

NORMS = (None, "batchnorm")


class ResidualMLPBlock(nn.Module):
    """``x + gate * scale * norm(fc2(act(fc1(x + b1a) + b1b) + b2a) + b2b)``, parts optional."""

    def __init__(
        self, width: int, *, norm: str | None = None, gate: bool = False, scalars: bool = False,
        activation: str = "relu",
    ) -> None:  # fmt: skip
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = resolve(activation).module()
        self.fc2 = nn.Linear(width, width)
        self.norm = nn.BatchNorm1d(width) if norm == "batchnorm" else None
        # parameters start at their neutral values; the init schemes set them on purpose
        self.gate = nn.Parameter(torch.ones(())) if gate else None
        self.scalars = scalars
        if scalars:
            self.bias1a, self.bias1b, self.bias2a, self.bias2b = (
                nn.Parameter(torch.zeros(())) for _ in range(4)
            )
            self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + branch(x)``; the branch is fc1, activation, fc2, with the optional scalars, norm
        and gate."""
        if self.scalars:
            h = self.act(self.fc1(x + self.bias1a) + self.bias1b)
            h = self.scale * self.fc2(h + self.bias2a) + self.bias2b
        else:
            h = self.fc2(self.act(self.fc1(x)))
        if self.norm is not None:
            h = self.norm(h)
        if self.gate is not None:
            h = self.gate * h
        return x + h


def residual_mlp(
    depth: int,
    width: int,
    norm: str | None = None,
    gate: bool = False,
    *,
    scalars: bool = False,
    activation: str = "relu",
    in_features: int | None = None,
    out_features: int | None = None,
) -> nn.Sequential:
    """``depth`` residual blocks of ``width`` units, between an optional input projection
    (``stem``, from ``in_features``; inputs are flattened) and an optional ``head``.

    >>> [name for name, _ in residual_mlp(2, 8, norm="batchnorm").named_children()]
    ['blocks']
    """
    if not isinstance(depth, int) or depth < 1 or not isinstance(width, int) or width < 1:
        raise InitSpecError(
            f"residual_mlp needs depth >= 1 and width >= 1, got depth={depth!r}, width={width!r}."
        )
    if norm not in NORMS:
        raise InitSpecError(
            f"residual_mlp norm={norm!r} is not supported; use None or 'batchnorm'."
        )
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    if in_features is not None:
        parts["flatten"] = nn.Flatten()
        parts["stem"] = nn.Linear(in_features, width)
    blocks = [
        ResidualMLPBlock(width, norm=norm, gate=gate, scalars=scalars, activation=activation)
        for _ in range(depth)
    ]
    parts["blocks"] = nn.Sequential(*blocks)
    if out_features is not None:
        parts["head"] = nn.Linear(width, out_features)
    return nn.Sequential(OrderedDict(parts))


def residual_classifier(
    depth: int = 10,
    width: int = 100,
    norm: str | None = None,
    gate: bool = False,
    scalars: bool = False,
    *,
    activation: str = "relu",
    in_shape: tuple[int, ...] = (1, 28, 28),
    n_classes: int = 10,
) -> nn.Module:
    """A factory for ``--arch initlab.models.residual:residual_classifier:depth=50``: flattens
    image inputs, then :func:`residual_mlp`."""
    in_features = 1
    for n in in_shape:
        in_features *= n
    body = residual_mlp(depth, width, norm=None if norm in (None, "none") else norm, gate=gate,
                        scalars=scalars, activation=activation, in_features=in_features,
                        out_features=n_classes)  # fmt: skip
    return nn.Sequential(nn.Flatten(), body)
