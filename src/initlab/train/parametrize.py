"""Width parametrizations (SP, μP) as a setting the stacked trainer is given.

A run spec asks for one with ``extra={"parametrization": "mup", "base_width": 64}`` and an
arch that is a width factory (``initlab.models.mup:mlp:depth=2,width=256``). The trainer
then resolves the plan once per stack (:func:`initlab.models.mup.plan_widths`), puts the
readout multiplier on every member before stacking and gives the optimizer one parameter
group per learning-rate multiplier; the schedule sets ``lr = base lr x lr_mult`` in each.
Without a parametrization every multiplier is 1 and nothing changes.

>>> p = Parametrization.from_extra({"parametrization": "mup", "base_width": 64})
>>> p, Parametrization.from_extra({}) is None
(Parametrization(name='mup', base_width=64), True)
>>> p.to_extra()
{'parametrization': 'mup', 'base_width': 64}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from initlab.errors import ConfigError
from initlab.models.mup import (
    OPTIMIZERS,
    PARAMETRIZATIONS,
    WidthPlan,
    check_choice,
    named_param_groups,
    param_groups,
    plan_widths,
    width_factory,
)
from initlab.models.specs import parse_arch
from initlab.specs import parse_spec
from initlab.train.optim import make_optimizer


@dataclass(frozen=True)
class Parametrization:
    """A width parametrization: ``name`` (``sp`` or ``mup``) against ``base_width``."""

    name: str
    base_width: int

    def __post_init__(self) -> None:
        check_choice("parametrization", self.name, PARAMETRIZATIONS)
        if int(self.base_width) < 1:
            raise ConfigError(f"base_width must be >= 1, got {self.base_width}.")

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> Parametrization | None:
        """The parametrization a run spec's ``extra`` asks for, or None."""
        if "parametrization" not in extra:
            return None
        return cls(str(extra["parametrization"]), int(extra["base_width"]))

    def to_extra(self) -> dict[str, Any]:
        """The ``RunSpec.extra`` entries that ask for this parametrization."""
        return {"parametrization": self.name, "base_width": self.base_width}

    def plan(self, arch: str, *, in_shape, n_classes: int, activation: str,
             optimizer: str) -> WidthPlan:  # fmt: skip
        """The plan for ``arch`` (a width factory naming its ``width=``) under ``optimizer``."""
        spec = parse_arch(arch)
        if "width" not in spec.kwargs:
            raise ConfigError(
                f"--arch {arch!r}: a width parametrization needs a factory arch with width=, "
                "e.g. initlab.models.mup:mlp:width=256."
            )
        factory = width_factory(arch, tuple(in_shape), n_classes, activation)
        return plan_widths(factory, width=int(spec.kwargs["width"]), base_width=self.base_width,
                           parametrization=self.name,
                           optimizer=optimizer_family(optimizer))  # fmt: skip


def optimizer_family(optimizer: str) -> str:
    """The plan's optimizer family of an optimizer spec (``adam:betas=...`` -> ``adam``)."""
    return check_choice("optimizer", parse_spec(optimizer).name, OPTIMIZERS)


def stacked_groups(params: dict[str, torch.Tensor], plan: WidthPlan, lr: float) -> list[dict]:
    """Optimizer groups over a stack's (K, ...) tensors, which keep the plain names."""
    return named_param_groups(params.items(), plan, lr)


def width_optimizer(model: nn.Module, plan: WidthPlan, optimizer: str, lr: float):
    """The one optimizer factory (:func:`initlab.train.optim.make_optimizer`) over the width
    plan's per-parameter groups of a plain model; the optimizer must be the plan's.

    >>> from initlab.models.mup import mlp
    >>> plan = plan_widths(mlp, width=128, base_width=64, optimizer="sgd")
    >>> type(width_optimizer(mlp(width=128), plan, "sgd", 0.1)).__name__
    'SGD'
    """
    family = optimizer_family(optimizer)
    if family != plan.optimizer:
        raise ConfigError(f"The plan was made for {plan.optimizer}, not {family}.")
    return make_optimizer(optimizer, param_groups(model, plan, lr), lr=lr, foreach=None)
