"""One model per width, trained with plain PyTorch under a width parametrization.

Widths differ, so the stacked trainer does not apply: each (width, seed) is its own model and
``torch.optim`` optimizer whose parameter groups carry the per-layer learning rates of
:mod:`initlab.models.mup`. Initial weights come from ``initlab.init_`` with a generator
seeded by the seed index; batch order from a second generator seeded by the seed index, so
every width (and every learning rate) of one seed sees the same batches.

>>> import torch
>>> from initlab.data.datasets import load
>>> run = WidthRun.build("initlab.models.mup:mlp", width=32, base_width=32, seed=0,
...                      optimizer="adam", lr=1e-3, data=load("blobs"))
>>> losses = run.train(steps=3, batch_size=16)
>>> len(losses), all(x > 0 for x in losses)
(3, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from initlab.data.dataset import Dataset
from initlab.errors import ConfigError
from initlab.initializers import init_
from initlab.models.mup import (
    OPTIMIZERS,
    WidthPlan,
    apply_readout,
    check_choice,
    param_groups,
    plan_widths,
)
from initlab.models.specs import build, is_factory, parse_arch
from initlab.specs import format_spec
from initlab.train.optim import make_optimizer

WEIGHT_SALT = 0  # generator seeds: weights from seed * 2, batches from seed * 2 + 1
BATCH_SALT = 1


def width_arch(arch: str, width: int) -> str:
    """``arch`` with ``width=`` set: ``width_arch("pkg.mod:make", 64) == "pkg.mod:make:width=64"``.

    >>> width_arch("initlab.models.mup:mlp:depth=3", 128)
    'initlab.models.mup:mlp:depth=3,width=128'
    """
    spec = parse_arch(arch)
    if not is_factory(spec.name):
        raise ConfigError(
            f"--arch {arch!r}: width scaling needs a factory taking width=, given as "
            "package.module:factory (e.g. initlab.models.mup:mlp)."
        )
    return format_spec(spec.name, {**spec.kwargs, "width": int(width)})


def width_factory(arch: str, data: Dataset, activation: str = "relu") -> Callable[..., nn.Module]:
    """``factory(width=W)`` building ``arch`` for ``data`` (what :func:`plan_widths` calls)."""

    def factory(width: int) -> nn.Module:
        return build(
            width_arch(arch, width),
            activation=activation,
            in_shape=data.in_shape,
            n_classes=data.n_classes,
        )

    return factory


def width_optimizer(model: nn.Module, plan: WidthPlan, optimizer: str, lr: float):
    """The one optimizer factory (:func:`initlab.train.optim.make_optimizer`) over the width
    plan's per-parameter groups; the optimizer must be the one the plan was made for.

    >>> from initlab.models.mup import mlp
    >>> plan = plan_widths(mlp, width=128, base_width=64, optimizer="sgd")
    >>> type(width_optimizer(mlp(width=128), plan, "sgd", 0.1)).__name__
    'SGD'
    """
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    if optimizer != plan.optimizer:
        raise ConfigError(f"The plan was made for {plan.optimizer}, not {optimizer}.")
    if not lr > 0:
        raise ConfigError(f"Learning rate must be > 0, got {lr}.")
    return make_optimizer(optimizer, param_groups(model, plan, lr), lr=lr, foreach=None)


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """(steps, batch_size) row indices: seeded epochs of a random permutation, concatenated."""
    g = torch.Generator().manual_seed(2 * seed + BATCH_SALT)
    need = steps * batch_size
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(need / n))])
    return order[:need].view(steps, batch_size)


@dataclass
class WidthRun:
    """One model at one width and seed, its width plan and its optimizer."""

    model: nn.Module
    plan: WidthPlan
    optimizer: torch.optim.Optimizer
    data: Dataset
    seed: int

    @classmethod
    def build(
        cls,
        arch: str,
        *,
        width: int,
        base_width: int,
        seed: int,
        optimizer: str,
        lr: float,
        data: Dataset,
        parametrization: str = "mup",
        activation: str = "relu",
        init: str = "auto",
    ) -> WidthRun:
        """The model of ``arch`` at ``width``, initialized from a seeded generator, with the
        width plan's readout multiplier and per-parameter optimizer."""
        factory = width_factory(arch, data, activation)
        plan = plan_widths(
            factory,
            width=width,
            base_width=base_width,
            parametrization=parametrization,
            optimizer=optimizer,
        )
        model = factory(width=width)
        init_(model, init, generator=torch.Generator().manual_seed(2 * seed + WEIGHT_SALT))
        apply_readout(model, plan)
        return cls(model, plan, width_optimizer(model, plan, optimizer, lr), data, seed)

    def train(
        self,
        steps: int,
        batch_size: int,
        before_step: Callable[[int], Any] | None = None,
    ) -> list[float]:
        """Train ``steps`` steps; return the training loss of each (NaN from divergence on).

        ``before_step(t)`` is called before step ``t`` (after ``t`` updates) and once more
        with ``t = steps`` at the end.
        """
        order = batch_order(len(self.data.train), batch_size, steps, self.seed)
        losses: list[float] = []
        self.model.train()
        for t in range(steps):
            if before_step is not None:
                before_step(t)
            index = order[t]
            x, y = self.data.train.features(index), self.data.train.labels(index)
            loss = F.cross_entropy(self.model(x), y)
            value = float(loss.detach())
            losses.append(value)
            if not math.isfinite(value):
                losses += [math.nan] * (steps - t - 1)
                return losses
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        if before_step is not None:
            before_step(steps)
        return losses


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules owning a weight matrix (or kernel) directly, in definition order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(getattr(m, "weight", None), nn.Parameter) and m.weight.ndim >= 2
    ]


class MeanAbs:
    """Forward hooks recording mean |output| of each weight layer on the next forward.

    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    >>> with MeanAbs(model) as probe:
    ...     _ = model(torch.ones(4, 3))
    >>> list(probe.values)
    ['0']
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = weight_layers(model)
        self.values: dict[str, float] = {}
        self._handles: list = []

    def __enter__(self) -> MeanAbs:
        for name, module in self.layers:
            self._handles.append(module.register_forward_hook(partial(self._record, name)))
        return self

    def _record(self, name: str, _module, _args, output) -> None:
        self.values[name] = float(output.detach().abs().mean())

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
