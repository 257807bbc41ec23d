"""Optimizers by spec: ``sgd``, ``momentum``, ``nesterov``, ``adam:betas=0.9,0.999``...

>>> import torch
>>> opt = make_optimizer("adam:eps=1e-7", [torch.zeros(3, requires_grad=True)], lr=1e-3)
>>> type(opt).__name__, opt.defaults["eps"], opt.defaults["foreach"]
('Adam', 1e-07, True)
>>> canonical_optimizer("momentum:momentum=0.9")
'momentum'

``torch.optim`` does the work, with ``foreach=True`` (one kernel per op over all tensors).
All of these are element-wise, so on stacked (K, ...) tensors each member's slice moves
exactly as it would alone. The learning rate is given separately (``lr=``), as on the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from initlab.errors import InitSpecError
from initlab.registry import Registry
from initlab.specs import format_spec


@dataclass(frozen=True)
class OptimizerKind:
    """One named optimizer: its torch class, fixed settings and the options a spec may set."""

    cls: type[torch.optim.Optimizer]
    options: dict[str, Any]  # option -> default, as torch.optim defines it
    fixed: dict[str, Any] = field(default_factory=dict)  # settings implied by the name


_SGD = {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}
_ADAM = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}
# name -> OptimizerKind; names are looked up lower-cased ("SGD" is "sgd")
OPTIMIZERS = Registry("optimizer", normalize=str.lower)
OPTIMIZERS.register("sgd", OptimizerKind(torch.optim.SGD, _SGD))
OPTIMIZERS.register("momentum", OptimizerKind(torch.optim.SGD, {**_SGD, "momentum": 0.9}))
OPTIMIZERS.register(
    "nesterov",
    OptimizerKind(torch.optim.SGD, {"momentum": 0.9, "weight_decay": 0.0}, {"nesterov": True}),
)
OPTIMIZERS.register("adam", OptimizerKind(torch.optim.Adam, _ADAM))
OPTIMIZERS.register("adamw", OptimizerKind(torch.optim.AdamW, {**_ADAM, "weight_decay": 0.01}))
OPTIMIZERS.register(
    "rmsprop",
    OptimizerKind(
        torch.optim.RMSprop,
        {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False},
    ),
)
OPTIMIZERS.register(
    "adagrad",
    OptimizerKind(
        torch.optim.Adagrad,
        {"lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10},
    ),
)


def names(pattern: str | None = None) -> list[str]:
    """Optimizer names a spec may use, sorted; a glob ``pattern`` keeps those it matches.

    >>> names("ada*")
    ['adagrad', 'adam', 'adamw']
    """
    return OPTIMIZERS.names(pattern)


def resolve_optimizer(spec: str) -> tuple[str, dict[str, Any]]:
    """The optimizer name and its full keyword settings (defaults filled in).

    >>> resolve_optimizer("Nesterov:momentum=0.8")
    ('nesterov', {'momentum': 0.8, 'weight_decay': 0.0})
    """
    name, options = OPTIMIZERS.parse(spec)
    if "lr" in options:
        raise InitSpecError(
            f"Optimizer {spec!r}: give the learning rate with --lr / lr=, not in the spec."
        )
    kind = OPTIMIZERS[name]
    OPTIMIZERS.check_options(name, options, kind.options)
    settings = dict(kind.options)
    for key, value in options.items():
        settings[key] = _coerce(name, key, value, kind.options[key])
    return name, settings


def canonical_optimizer(spec: str) -> str:
    """The canonical spec: options equal to the name's defaults dropped, keys sorted."""
    name, settings = resolve_optimizer(spec)
    defaults = OPTIMIZERS[name].options
    changed = {k: settings[k] for k in sorted(settings) if settings[k] != defaults[k]}
    return format_spec(name, changed)


def make_optimizer(
    spec: str,
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
    *,
    lr: float,
    foreach: bool | None = True,
) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimizer for ``params`` (tensors, or parameter-group dicts as
    torch takes them) from a spec, with one-line errors; ``foreach=None`` leaves the choice
    to torch."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise InitSpecError(f"Learning rate {lr!r} must be a positive number.")
    return build_optimizer(spec, params, lr=float(lr), foreach=foreach)


def build_optimizer(spec: str, params, *, lr: float, foreach: bool | None = True):
    """:func:`make_optimizer` for a learning rate already checked at the edge (a run spec's:
    the trainer trusts its spec and checks nothing twice)."""
    name, settings = resolve_optimizer(spec)
    kind = OPTIMIZERS[name]
    try:
        return kind.cls(params, lr=lr, foreach=foreach, **settings, **kind.fixed)
    except ValueError as e:
        raise InitSpecError(f"Optimizer {spec!r}: {e}.") from None


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    def bad() -> InitSpecError:
        return InitSpecError(
            f"Option {key}={value!r} of optimizer '{name}' must be like {default!r}."
        )

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad()
        return value
    if isinstance(default, tuple):
        if not isinstance(value, tuple) or len(value) != len(default):
            raise bad()
        return tuple(float(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad()
    return float(value)
