"""Activations by name: one registry shared by gains, models, the probe and the CLI.

``resolve("leaky_relu:negative_slope=0.2")`` gives an :class:`Activation` with a canonical
name, its elementwise torch function and a module factory. Names are the lower-case torch
names (``relu``, ``gelu``, ``silu``...); ``swish`` and ``linear`` are aliases. Each entry of
:data:`ACTIVATIONS` also says which ``nn.Module`` class, Hugging Face module classes and
torch functions compute it, so models and traces are read from the same table.

>>> resolve("Swish").spec, resolve("leaky_relu:negative_slope=0.2").module()
('silu', LeakyReLU(negative_slope=0.2))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from initlab.errors import InitSpecError
from initlab.registry import Registry
from initlab.specs import format_spec


@dataclass(frozen=True)
class Activation:
    """An elementwise activation: canonical name, options, torch function, module factory."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        """The canonical spec string: the name and any options (``name:key=value``)."""
        return format_spec(self.name, self.options)

    def fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The torch function of the activation, with its options bound."""
        return ACTIVATIONS[self.name].fn(**self.options)

    def module(self) -> nn.Module:
        """A new ``nn.Module`` of the activation, with its options."""
        return ACTIVATIONS[self.name].module(**self.options)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn()(x)


def _no_options(module: nn.Module) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ActivationKind:
    """One registered activation: how to compute it and how to recognise it.

    ``fn(**options)`` gives the torch function and ``module(**options)`` (the ``nn.Module``
    class) a module; ``read(module)`` reads the options back from such a module; ``hf`` maps
    Hugging Face activation class names (``transformers.activations``) to the options they
    mean; ``functions`` are the torch callables and Tensor method names that compute it in a
    traced graph (their options come from the call).
    """

    fn: Callable[..., Callable]
    module: type[nn.Module]
    options: tuple[str, ...] = ()
    read: Callable[[nn.Module], dict[str, Any]] = _no_options
    hf: dict[str, dict[str, Any]] = field(default_factory=dict)
    functions: tuple[Any, ...] = ()


def _ident(x: torch.Tensor) -> torch.Tensor:
    return x


def _changed(module: nn.Module, **defaults: Any) -> dict[str, Any]:
    """The float options of ``module`` when any differs from its default, else none."""
    values = {k: float(getattr(module, k)) for k in defaults}
    return {} if values == defaults else values


_TANH = {"approximate": "tanh"}
# name -> ActivationKind; names are looked up lower-cased ("ReLU" is "relu")
ACTIVATIONS = Registry("activation", normalize=str.lower)
ACTIVATIONS.register(
    "identity",
    ActivationKind(lambda: _ident, nn.Identity, hf={"LinearActivation": {}}),
    aliases=("linear", "none"),
)
ACTIVATIONS.register(
    "relu",
    ActivationKind(
        lambda: F.relu,
        nn.ReLU,
        functions=(F.relu, torch.relu, F.relu_, torch.relu_, "relu", "relu_"),
    ),
)
ACTIVATIONS.register(
    "leaky_relu",
    ActivationKind(
        lambda negative_slope=0.01: lambda x: F.leaky_relu(x, negative_slope),
        nn.LeakyReLU,
        ("negative_slope",),
        lambda m: {"negative_slope": float(m.negative_slope)},
        functions=(F.leaky_relu,),
    ),
    aliases=("leakyrelu",),
)
ACTIVATIONS.register(
    "tanh",
    ActivationKind(lambda: torch.tanh, nn.Tanh, functions=(torch.tanh, F.tanh, "tanh", "tanh_")),
)
ACTIVATIONS.register(
    "sigmoid",
    ActivationKind(
        lambda: torch.sigmoid,
        nn.Sigmoid,
        functions=(torch.sigmoid, F.sigmoid, "sigmoid", "sigmoid_"),
    ),
)
ACTIVATIONS.register(
    "selu", ActivationKind(lambda: F.selu, nn.SELU, functions=(F.selu, torch.selu))
)
ACTIVATIONS.register(
    "gelu",
    ActivationKind(
        lambda approximate="none": lambda x: F.gelu(x, approximate=approximate),
        nn.GELU,
        ("approximate",),
        lambda m: {} if m.approximate == "none" else {"approximate": m.approximate},
        hf={
            "GELUActivation": {},
            "ClippedGELUActivation": {},  # GELU clipped to [-10, 10]: GELU at init scales
            "NewGELUActivation": _TANH,
            "FastGELUActivation": _TANH,
            "AccurateGELUActivation": _TANH,
            "GELUTanh": _TANH,
            "PytorchGELUTanh": _TANH,
        },
        functions=(F.gelu,),
    ),
)
ACTIVATIONS.register(
    "silu",
    ActivationKind(lambda: F.silu, nn.SiLU, hf={"SiLUActivation": {}}, functions=(F.silu,)),
    aliases=("swish",),
)
for _name, _fn, _cls in (("elu", F.elu, nn.ELU), ("celu", F.celu, nn.CELU)):  # one option: alpha
    ACTIVATIONS.register(
        _name,
        ActivationKind(
            lambda alpha=1.0, fn=_fn: lambda x: fn(x, alpha),
            _cls,
            ("alpha",),
            lambda m: _changed(m, alpha=1.0),
            functions=(_fn,),
        ),
    )
ACTIVATIONS.register(
    "mish",
    ActivationKind(lambda: F.mish, nn.Mish, hf={"MishActivation": {}}, functions=(F.mish,)),
)
ACTIVATIONS.register(
    "softplus",
    ActivationKind(
        lambda beta=1.0, threshold=20.0: lambda x: F.softplus(x, beta, threshold),
        nn.Softplus,
        ("beta", "threshold"),
        lambda m: _changed(m, beta=1.0, threshold=20.0),
        functions=(F.softplus,),
    ),
)
ACTIVATIONS.register("relu6", ActivationKind(lambda: F.relu6, nn.ReLU6, functions=(F.relu6,)))
ACTIVATIONS.register(
    "hardtanh", ActivationKind(lambda: F.hardtanh, nn.Hardtanh, functions=(F.hardtanh,))
)
ACTIVATIONS.register(
    "softsign", ActivationKind(lambda: F.softsign, nn.Softsign, functions=(F.softsign,))
)

# The ReLU family: units can be exactly zero ("dead").
RELU_FAMILY = frozenset({"relu", "relu6"})
# Bounded outputs: natural histogram ranges and saturation thresholds.
BOUNDED_RANGE = {
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hardtanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}

# Indexes into ACTIVATIONS, for reading models and traces: nn.Module class -> name; Hugging
# Face class name -> (name, options), read by name so that transformers need not be
# installed; functional callable or Tensor method name -> name.
_MODULES: dict[type, str] = {kind.module: name for name, kind in ACTIVATIONS.items()}
_HF_MODULES: dict[str, tuple[str, dict]] = {
    cls: (name, options) for name, kind in ACTIVATIONS.items() for cls, options in kind.hf.items()
}
FUNCTIONS: dict[Any, str] = {f: name for name, kind in ACTIVATIONS.items() for f in kind.functions}


def names(pattern: str | None = None) -> list[str]:
    """Canonical activation names, sorted; a glob ``pattern`` keeps those it matches.

    >>> names("?elu")
    ['celu', 'gelu', 'relu', 'selu']
    """
    return ACTIVATIONS.names(pattern)


def from_module(module: nn.Module) -> Activation | None:
    """The activation an ``nn.Module`` computes, or None when it is not an elementwise one.

    >>> from_module(nn.GELU(approximate="tanh")).spec, from_module(nn.Linear(2, 2))
    ('gelu:approximate=tanh', None)
    """
    cls = type(module)
    name = _MODULES.get(cls)
    if name is None:
        if cls.__module__.startswith("transformers") and cls.__name__ in _HF_MODULES:
            name, options = _HF_MODULES[cls.__name__]
            return Activation(name, dict(options))
        return None
    return Activation(name, ACTIVATIONS[name].read(module))


def resolve(spec: str | Activation | nn.Module | dict | None) -> Activation:
    """Turn a name, spec string, dict, module or Activation into an :class:`Activation`."""
    if spec is None:
        return Activation("identity")
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, nn.Module):
        act = from_module(spec)
        if act is None:
            raise InitSpecError(
                f"{type(spec).__name__} is not an elementwise activation initlab knows. "
                f"Allowed: {', '.join(names())}."
            )
        return act
    if isinstance(spec, dict):
        options = dict(spec)
        name = options.pop("name", None)
        if name is None:
            raise InitSpecError("An activation dict needs a 'name' key, e.g. {'name': 'relu'}.")
        name = ACTIVATIONS.canonical(str(name))
    else:
        name, options = ACTIVATIONS.parse(spec)
    ACTIVATIONS.check_options(name, options, ACTIVATIONS[name].options)
    return Activation(name, options)
