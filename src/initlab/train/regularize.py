"""Regularization of a stack: L1/L2 weight penalties, activity penalties, decoupled decay.

Conventions (Keras' regularizers, applied to weights only, never biases or norm parameters):

* ``l2``: the loss gains ``l2 * sum(W ** 2)`` (coupled: the gradient gains ``2 * l2 * W``).
* ``l1``: the loss gains ``l1 * sum(|W|)`` (the gradient gains ``l1 * sign(W)``).
* ``weight_decay``: decoupled, as ``torch.optim.AdamW`` does it: before each optimizer step
  ``W <- W * (1 - lr_t * weight_decay)``, whatever the optimizer; the loss does not see it.
* ``activity_l1`` / ``activity_l2``: the loss gains the batch mean of ``sum(|h|)`` /
  ``sum(h ** 2)`` over the features of the chosen hidden activations ``h``
  (``activity_layers``: 1-based positions among the model's activations; None = all).

"Weights" are the ``weight`` of every Linear and Conv layer. Every penalty is computed per
member, so in a stack each model sees exactly the term it would see alone.

>>> Regularization(l2=1e-4).active, Regularization().active
(True, False)
>>> Regularization(l1=1e-5, activity_l2=0.1).to_extra()
{'l1': 1e-05, 'activity_l2': 0.1}
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from initlab.errors import ConfigError

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class Regularization:
    """What to add to each member's loss, and the decoupled weight decay."""

    l1: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.0
    activity_l1: float = 0.0
    activity_l2: float = 0.0
    activity_layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "activity_layers" and not (isinstance(value, (int, float)) and value >= 0):
                raise ConfigError(f"{f.name}={value!r} must be a number >= 0.")
        if self.activity_layers is not None and (
            not self.activity_layers or any(int(i) < 1 for i in self.activity_layers)
        ):
            raise ConfigError(
                f"activity_layers={list(self.activity_layers)!r}: give 1-based positions of "
                "hidden activations, e.g. [1, 2]."
            )

    @property
    def active(self) -> bool:
        """Is any penalty or decay set?"""
        return any(getattr(self, f.name) for f in fields(self) if f.name != "activity_layers")

    @property
    def activity(self) -> bool:
        """Is an activity penalty set (the trainer then keeps the activations)?"""
        return bool(self.activity_l1 or self.activity_l2)

    def to_extra(self) -> dict[str, Any]:
        """The settings that differ from none, as plain data (for ``RunSpec.extra``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value and f.name != "activity_layers":
                out[f.name] = float(value)
        if self.activity and self.activity_layers is not None:
            out["activity_layers"] = [int(i) for i in self.activity_layers]
        return out

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> Regularization:
        """The settings stored in ``RunSpec.extra`` (other keys ignored)."""
        keys = {f.name for f in fields(cls)}
        values = {k: v for k, v in extra.items() if k in keys}
        if values.get("activity_layers") is not None:
            values["activity_layers"] = tuple(values["activity_layers"])
        return cls(**values)


def weight_names(template: nn.Module) -> list[str]:
    """State-dict names of the weights the penalties and decoupled decay act on."""
    return [f"{n}.weight" if n else "weight" for n, m in template.named_modules()
            if isinstance(m, WEIGHT_LAYERS)]  # fmt: skip


def weight_penalty(reg: Regularization, weights: list[torch.Tensor]) -> torch.Tensor | None:
    """(K,) per-member ``l1 * sum|W| + l2 * sum W^2`` over stacked (K, ...) weights."""
    if not (reg.l1 or reg.l2) or not weights:
        return None
    total = None
    for w in weights:
        flat = w.flatten(1)
        term = 0.0
        if reg.l2:
            term = term + reg.l2 * flat.pow(2).sum(1)
        if reg.l1:
            term = term + reg.l1 * flat.abs().sum(1)
        total = term if total is None else total + term
    return total


def activity_penalty(reg: Regularization, per_member_sums: list[tuple]) -> torch.Tensor | None:
    """(K,) per-member activity penalty from captured ``(l1_sum, l2_sum)`` pairs, each (K,)."""
    if not reg.activity or not per_member_sums:
        return None
    total = None
    for l1_sum, l2_sum in per_member_sums:
        term = reg.activity_l1 * l1_sum + reg.activity_l2 * l2_sum
        total = term if total is None else total + term
    return total


def activity_sums(x: torch.Tensor, layout: str, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch means of sum|h| and sum h^2 per member, for an activation in a stack layout."""
    if layout == "channels":  # (B, K*C, ...): member-major channels
        per = x.reshape(x.shape[0], K, -1).transpose(0, 1)  # (K, B, C*...)
    else:  # stacked (K, B, ...); a shared (G, B, ...) input is expanded by the caller
        per = x.reshape(K, x.shape[1], -1)
    return per.abs().sum(2).mean(1), per.pow(2).sum(2).mean(1)


def decay_(reg: Regularization, weights: list[torch.Tensor], lr: float) -> None:
    """Decoupled weight decay, in place: ``W *= 1 - lr * weight_decay``."""
    if not reg.weight_decay:
        return
    with torch.no_grad():
        torch._foreach_mul_(weights, 1.0 - lr * reg.weight_decay)
