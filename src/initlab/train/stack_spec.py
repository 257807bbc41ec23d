"""The edge of the trainer for Python callers: members and settings in, one checked,
canonical :class:`~initlab.runspec.StackSpec` out (``CompareConfig`` is the other edge).

>>> from initlab.data import load
>>> spec = stack_spec([Member("kaiming_normal", 0)], data=load("blobs"), arch="mlp:16x2",
...                   activation="ReLU", optimizer="sgd", lr=0.1, batch_size=32, steps=50,
...                   eval_every=None, target_loss=0.5)
>>> spec.members, spec.common.arch, spec.common.eval_every
((('he_normal', 0),), 'mlp:16,16', 50)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from initlab.activations import resolve
from initlab.data.tensors import Dataset
from initlab.errors import ConfigError
from initlab.initializers import get
from initlab.models.specs import canonical_arch
from initlab.runspec import RunSpec, StackSpec
from initlab.train.controls import TrainControls
from initlab.train.optim import canonical_optimizer
from initlab.train.parametrize import Parametrization


@dataclass(frozen=True)
class Member:
    """One model of a stack: an init spec and a seed index."""

    init: str
    seed: int


def checkpoint_interval(steps: int) -> int:
    """How often a stack is checkpointed: every tenth of its steps, at least 50 apart."""
    return max(steps // 10, 50)


def stack_spec(
    members: list[Member],
    *,
    data: Dataset,
    arch: str,
    activation: str,
    optimizer: str,
    lr: float,
    batch_size: int,
    steps: int,
    eval_every: int | None,
    target_loss: float,
    bias: str = "zeros",
    device: str | torch.device = "cpu",
    controls: TrainControls | None = None,
    parametrization: Parametrization | None = None,
) -> StackSpec:
    """The :class:`~initlab.runspec.StackSpec` of ``members`` on ``data``: every setting
    checked and spelled canonically, once (``eval_every=None``: only at the end).
    ``parametrization`` (SP or μP against a base width) needs a width-factory ``arch``."""
    _check(members, data, batch_size, steps, eval_every, lr)
    extra = (controls or TrainControls()).to_extra()
    if parametrization is not None:
        parametrization.plan(arch, in_shape=data.in_shape, n_classes=data.n_classes,
                             activation=activation, optimizer=optimizer)  # fmt: skip
        extra.update(parametrization.to_extra())
    common = dict(
        dataset=data.name, arch=canonical_arch(arch), activation=resolve(activation).spec,
        optimizer=canonical_optimizer(optimizer), lr=float(lr), batch_size=batch_size,
        steps=steps, eval_every=eval_every or steps, target_loss=float(target_loss),
        bias_init=get(bias).to_spec(),
    )  # fmt: skip
    runs = tuple(RunSpec(init=get(m.init).to_spec(), seed=m.seed, extra=dict(extra), **common)
                 for m in members)  # fmt: skip
    return StackSpec(runs, device=str(torch.device(device)))


def _check(members, data, batch_size, steps, eval_every, lr) -> None:
    if not members:
        raise ConfigError("No members to train: give at least one (init, seed).")
    for name, value, low in (("steps", steps, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r} must be an integer >= {low}.")
    if batch_size > len(data.train):
        raise ConfigError(
            f"batch_size={batch_size} exceeds the {len(data.train)} training examples of "
            f"'{data.name}'."
        )
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise ConfigError(f"eval_every={eval_every!r} must be an integer >= 1 (or None).")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"lr={lr!r} must be a positive number.")
    for m in members:
        if isinstance(m.seed, bool) or not isinstance(m.seed, int) or m.seed < 0:
            raise ConfigError(f"Seed {m.seed!r} of member {m} must be an integer >= 0.")
