"""Width parametrizations: standard (``sp``) and μP (``mup``, Tensor Programs V, Yang et al. 2022).

Which dimensions of a parameter grow with width is read off the model itself, as
microsoft/mup's ``set_base_shapes`` does: the factory is built at the base width and at
twice the base width, and every dimension that differs between the two is "infinite". With
``m = dim / base_dim`` for each infinite dimension, a parameter is

* ``input`` (one infinite dimension, its fan-out: first-layer weights, every bias),
* ``hidden`` (two infinite dimensions: width x width matrices),
* ``output`` (one infinite dimension, its fan-in: the readout weight),
* ``fixed`` (nothing grows: e.g. the readout bias).

μP keeps the usual 1/fan_in initialization, multiplies the readout's input by ``1 / m``
(so the readout is effectively initialized with variance 1/fan_in^2) and scales the
learning rate per parameter. The multipliers differ between SGD and Adam:

========  ==========  ==========  ==========  ========
kind      SGD lr      Adam lr     init var    forward
========  ==========  ==========  ==========  ========
input     lr * m      lr          1/fan_in    x 1
hidden    lr          lr / m      1/fan_in    x 1
output    lr * m      lr          1/fan_in    x 1/m
fixed     lr          lr          1/fan_in    x 1
========  ==========  ==========  ==========  ========

(for a hidden matrix of fan-in multiplier ``m_in`` and fan-out multiplier ``m_out``:
SGD ``lr * m_out / m_in``, Adam ``lr / m_in``.) At the base width every multiplier is 1,
so μP and SP coincide there; SP uses multiplier 1 at every width.

>>> import torch
>>> plan = plan_widths(mlp, width=256, base_width=64, parametrization="mup", optimizer="adam")
>>> [(r.name, r.kind, r.lr_mult) for r in plan.rows]  # doctest: +NORMALIZE_WHITESPACE
[('1.weight', 'input', 1.0), ('1.bias', 'input', 1.0), ('3.weight', 'hidden', 0.25),
 ('3.bias', 'input', 1.0), ('5.weight', 'output', 1.0), ('5.bias', 'fixed', 1.0)]
>>> plan.readout_mult
0.25
>>> sorted({g["lr"] for g in param_groups(mlp(width=256), plan, 1e-2)})
[0.0025, 0.01]

The optimizer over these groups is :func:`initlab.train.optim.make_optimizer`, the one
optimizer factory (``width_optimizer`` checks the plan first); the stacked trainer builds
the same groups over its stacked tensors (:mod:`initlab.train.parametrize`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from math import prod
from typing import Any

import torch
from torch import nn

from initlab.activations import resolve
from initlab.errors import ConfigError
from initlab.models.specs import build, is_factory, parse_arch
from initlab.specs import format_spec

PARAMETRIZATIONS = ("sp", "mup")
OPTIMIZERS = ("sgd", "adam")
KINDS = ("input", "hidden", "output", "fixed")


def mlp(
    width: int,
    depth: int = 2,
    activation: str = "relu",
    in_shape: tuple[int, ...] = (1, 28, 28),
    n_classes: int = 10,
    bias: bool = True,
) -> nn.Sequential:
    """A plain MLP ``prod(in_shape)-width x depth-n_classes``; ``depth`` counts hidden layers.

    >>> [tuple(p.shape) for p in mlp(width=32, depth=2, in_shape=(8,), n_classes=3).parameters()]
    [(32, 8), (32,), (32, 32), (32,), (3, 32), (3,)]
    """
    if int(width) < 1 or int(depth) < 1:
        raise ConfigError(f"mlp needs width >= 1 and depth >= 1, got width={width}, depth={depth}.")
    act = resolve(activation)
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = prod(in_shape)
    for _ in range(int(depth)):
        layers += [nn.Linear(fan_in, int(width), bias=bias), act.module()]
        fan_in = int(width)
    layers.append(nn.Linear(fan_in, n_classes, bias=bias))
    return nn.Sequential(*layers)


def lr_multiplier(kind: str, optimizer: str, fan_in_mult: float, fan_out_mult: float) -> float:
    """The μP learning-rate multiplier of one parameter (the table in the module docstring).

    >>> lr_multiplier("hidden", "adam", 4.0, 4.0), lr_multiplier("input", "sgd", 1.0, 4.0)
    (0.25, 4.0)
    """
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    if kind == "hidden":
        return fan_out_mult / fan_in_mult if optimizer == "sgd" else 1.0 / fan_in_mult
    if kind == "input":
        return fan_out_mult if optimizer == "sgd" else 1.0
    if kind == "output":
        return fan_in_mult if optimizer == "sgd" else 1.0
    if kind == "fixed":
        return 1.0
    raise ConfigError(f"Unknown parameter kind {kind!r}; allowed: {', '.join(KINDS)}.")


def multiplier_table(optimizer: str) -> list[tuple[str, str, str, str]]:
    """(kind, lr, init variance, forward multiplier) for ``optimizer``, as formulas in ``m``.

    >>> multiplier_table("adam")[1]
    ('hidden', 'lr / m', '1/fan_in', 'x 1')
    """
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    lr = {"sgd": ("lr * m", "lr", "lr * m", "lr"), "adam": ("lr", "lr / m", "lr", "lr")}[optimizer]
    forward = ("x 1", "x 1", "x 1/m", "x 1")
    return [(k, lr[i], "1/fan_in", forward[i]) for i, k in enumerate(KINDS)]


@dataclass(frozen=True)
class ParamRow:
    """How one parameter scales: its kind, width multipliers and learning-rate multiplier."""

    name: str
    kind: str
    fan_in_mult: float
    fan_out_mult: float
    lr_mult: float


@dataclass(frozen=True)
class WidthPlan:
    """A parametrization resolved for one model: one row per parameter, plus the readout.

    ``readout`` names the module whose input is multiplied by ``readout_mult`` (None when no
    parameter is of kind ``output``).
    """

    parametrization: str
    optimizer: str
    width_mult: float
    rows: tuple[ParamRow, ...]
    readout: str | None
    readout_mult: float

    def lr_mults(self) -> dict[str, float]:
        """Parameter name -> learning-rate multiplier."""
        return {r.name: r.lr_mult for r in self.rows}


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


def width_factory(
    arch: str, in_shape: tuple[int, ...], n_classes: int, activation: str = "relu"
) -> Callable[..., nn.Module]:
    """``factory(width=W)`` building ``arch`` for the data's shapes (what :func:`plan_widths`
    calls); ``arch`` may already name a width, which ``width=`` replaces."""

    def factory(width: int) -> nn.Module:
        return build(width_arch(arch, width), activation=activation, in_shape=in_shape,
                     n_classes=n_classes)  # fmt: skip

    return factory


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` lower-cased if it is one of ``allowed``, else a one-line ConfigError."""
    v = str(value).strip().lower()
    if v not in allowed:
        raise ConfigError(f"Unknown {what} {value!r}; allowed: {', '.join(allowed)}.")
    return v


def _shapes(factory: Callable[..., nn.Module], width: int, kwargs: dict[str, Any]):
    with torch.device("meta"):  # shapes only: no memory, no random draws
        model = factory(width=width, **kwargs)
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


def _classify(shape, base, delta) -> tuple[str, float, float]:
    grows = [b != d for b, d in zip(base, delta)]
    mults = [s / b for s, b in zip(shape, base)]
    out_inf, in_inf = (grows + [False, False])[:2]
    out_m, in_m = (mults + [1.0, 1.0])[:2]
    if len(shape) < 2:  # a bias or gain: its one dimension is a fan-out
        return ("input" if out_inf else "fixed"), 1.0, (out_m if out_inf else 1.0)
    if sum(grows) > 2 or any(grows[2:]):
        raise ConfigError(f"A parameter of shape {shape} grows in more than fan-in and fan-out.")
    if out_inf and in_inf:
        return "hidden", in_m, out_m
    if in_inf:
        return "output", in_m, 1.0
    if out_inf:
        return "input", 1.0, out_m
    return "fixed", 1.0, 1.0


def plan_widths(
    factory: Callable[..., nn.Module],
    *,
    width: int,
    base_width: int,
    parametrization: str = "mup",
    optimizer: str = "adam",
    **kwargs: Any,
) -> WidthPlan:
    """Resolve ``parametrization`` for ``factory(width=width, **kwargs)`` against ``base_width``.

    >>> plan_widths(mlp, width=128, base_width=64, parametrization="sp").readout_mult
    1.0
    """
    parametrization = check_choice("parametrization", parametrization, PARAMETRIZATIONS)
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    if int(width) < 1 or int(base_width) < 1:
        raise ConfigError(f"Widths must be >= 1, got width={width}, base_width={base_width}.")
    shapes = _shapes(factory, width, kwargs)
    base = _shapes(factory, base_width, kwargs)
    delta = _shapes(factory, 2 * base_width, kwargs)
    rows, readout, readout_mult = [], None, 1.0
    for name, shape in shapes.items():
        kind, m_in, m_out = _classify(shape, base[name], delta[name])
        mult = lr_multiplier(kind, optimizer, m_in, m_out) if parametrization == "mup" else 1.0
        rows.append(ParamRow(name, kind, m_in, m_out, mult))
        if kind == "output":
            if readout is not None:
                raise ConfigError(
                    f"Two readout weights ({readout}, {name}): μP here needs one readout layer."
                )
            readout = name.rpartition(".")[0]
            readout_mult = 1.0 / m_in if parametrization == "mup" else 1.0
    return WidthPlan(
        parametrization, optimizer, width / base_width, tuple(rows), readout, readout_mult
    )


def apply_readout(model: nn.Module, plan: WidthPlan) -> nn.Module:
    """Multiply the readout module's input by ``plan.readout_mult``; returns the model.

    The multiplier is kept as the module's ``input_multiplier`` attribute, which a forward
    pre-hook applies in a plain call and the stacked trainer's batched kernels read directly
    (:mod:`initlab.models.stacked_ops`). A no-op when the multiplier is 1.

    >>> model = apply_readout(mlp(width=8, in_shape=(2,), n_classes=1),
    ...                       plan_widths(mlp, width=8, base_width=4, in_shape=(2,), n_classes=1))
    >>> model[5].input_multiplier
    0.5
    """
    if plan.readout is None or plan.readout_mult == 1.0:
        return model
    module = model.get_submodule(plan.readout)
    module.input_multiplier = plan.readout_mult
    module.register_forward_pre_hook(scale_input)
    return model


def scale_input(module: nn.Module, args: tuple) -> tuple:
    """The forward pre-hook of :func:`apply_readout`: the input times ``input_multiplier``."""
    return (args[0] * module.input_multiplier, *args[1:])


def param_groups(model: nn.Module, plan: WidthPlan, lr: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups: one per distinct learning rate, named by their kinds.

    >>> groups = param_groups(mlp(width=128), plan_widths(mlp, width=128, base_width=64), 0.1)
    >>> [(g["name"], g["lr"], g["lr_mult"], len(g["params"])) for g in groups]
    [('input+output+fixed', 0.1, 1.0, 5), ('hidden', 0.05, 0.5, 1)]
    """
    return named_param_groups(model.named_parameters(), plan, lr)


def named_param_groups(
    named: Iterable[tuple[str, torch.Tensor]], plan: WidthPlan, lr: float
) -> list[dict[str, Any]]:
    """:func:`param_groups` over ``(name, tensor)`` pairs: a model's parameters, or the
    stacked trainer's (K, ...) tensors, which keep the plain model's names. Each group keeps
    its ``lr_mult``, so a schedule can set ``lr = base * lr_mult``."""
    mults = plan.lr_mults()
    kinds = {r.name: r.kind for r in plan.rows}
    groups: dict[float, dict[str, Any]] = {}
    for name, p in named:
        if name not in mults:
            raise ConfigError(f"Parameter {name!r} is not in the width plan; rebuild the plan.")
        mult = mults[name]
        group = groups.setdefault(
            mult, {"params": [], "lr": lr * mult, "lr_mult": mult, "kinds": []}
        )
        group["params"].append(p)
        group["kinds"].append(kinds[name])
    for g in groups.values():
        g["name"] = "+".join(dict.fromkeys(g.pop("kinds")))
    return list(groups.values())
