"""Activations by name: one table shared by gains, models, the probe and the CLI.

``resolve("leaky_relu:negative_slope=0.2")`` gives an :class:`Activation` with a canonical
name, its elementwise torch function and a module factory. Names are the lower-case torch
names (``relu``, ``gelu``, ``silu``...); ``swish`` and ``linear`` are aliases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from initlab.errors import InitSpecError, unknown_name
from initlab.specs import format_spec, parse_spec


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
        make, _ = _TABLE[self.name]
        return make(**self.options)

    def module(self) -> nn.Module:
        """A new ``nn.Module`` of the activation, with its options."""
        _, module_factory = _TABLE[self.name]
        return module_factory(**self.options)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn()(x)


def _ident(x: torch.Tensor) -> torch.Tensor:
    return x


# name -> (function factory(**options), module factory(**options))
_TABLE: dict[str, tuple[Callable[..., Callable], Callable[..., nn.Module]]] = {
    "identity": (lambda: _ident, lambda: nn.Identity()),
    "relu": (lambda: F.relu, lambda: nn.ReLU()),
    "leaky_relu": (
        lambda negative_slope=0.01: lambda x: F.leaky_relu(x, negative_slope),
        lambda negative_slope=0.01: nn.LeakyReLU(negative_slope),
    ),
    "tanh": (lambda: torch.tanh, lambda: nn.Tanh()),
    "sigmoid": (lambda: torch.sigmoid, lambda: nn.Sigmoid()),
    "selu": (lambda: F.selu, lambda: nn.SELU()),
    "gelu": (
        lambda approximate="none": lambda x: F.gelu(x, approximate=approximate),
        lambda approximate="none": nn.GELU(approximate=approximate),
    ),
    "silu": (lambda: F.silu, lambda: nn.SiLU()),
    "elu": (lambda alpha=1.0: lambda x: F.elu(x, alpha), lambda alpha=1.0: nn.ELU(alpha)),
    "celu": (lambda alpha=1.0: lambda x: F.celu(x, alpha), lambda alpha=1.0: nn.CELU(alpha)),
    "mish": (lambda: F.mish, lambda: nn.Mish()),
    "softplus": (
        lambda beta=1.0, threshold=20.0: lambda x: F.softplus(x, beta, threshold),
        lambda beta=1.0, threshold=20.0: nn.Softplus(beta, threshold),
    ),
    "relu6": (lambda: F.relu6, lambda: nn.ReLU6()),
    "hardtanh": (lambda: F.hardtanh, lambda: nn.Hardtanh()),
    "softsign": (lambda: F.softsign, lambda: nn.Softsign()),
}
_ALIASES = {"linear": "identity", "none": "identity", "swish": "silu", "leakyrelu": "leaky_relu"}
_OPTIONS = {
    "leaky_relu": {"negative_slope"},
    "gelu": {"approximate"},
    "elu": {"alpha"},
    "celu": {"alpha"},
    "softplus": {"beta", "threshold"},
}

# The ReLU family: units can be exactly zero ("dead").
RELU_FAMILY = frozenset({"relu", "relu6"})
# Bounded outputs: natural histogram ranges and saturation thresholds.
BOUNDED_RANGE = {
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hardtanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}

# nn.Module classes -> (name, options read from the instance)
_MODULES: dict[type, Callable[[nn.Module], tuple[str, dict]]] = {
    nn.Identity: lambda m: ("identity", {}),
    nn.ReLU: lambda m: ("relu", {}),
    nn.LeakyReLU: lambda m: ("leaky_relu", {"negative_slope": float(m.negative_slope)}),
    nn.Tanh: lambda m: ("tanh", {}),
    nn.Sigmoid: lambda m: ("sigmoid", {}),
    nn.SELU: lambda m: ("selu", {}),
    nn.GELU: lambda m: ("gelu", {} if m.approximate == "none" else {"approximate": m.approximate}),
    nn.SiLU: lambda m: ("silu", {}),
    nn.ELU: lambda m: ("elu", {} if m.alpha == 1.0 else {"alpha": float(m.alpha)}),
    nn.CELU: lambda m: ("celu", {} if m.alpha == 1.0 else {"alpha": float(m.alpha)}),
    nn.Mish: lambda m: ("mish", {}),
    nn.Softplus: lambda m: (
        "softplus",
        {}
        if (m.beta, m.threshold) == (1.0, 20.0)
        else {"beta": float(m.beta), "threshold": float(m.threshold)},
    ),
    nn.ReLU6: lambda m: ("relu6", {}),
    nn.Hardtanh: lambda m: ("hardtanh", {}),
    nn.Softsign: lambda m: ("softsign", {}),
}

# Hugging Face activation modules (transformers.activations, ACT2FN), read by class name so
# that transformers need not be installed: name -> (activation, options)
_HF_MODULES: dict[str, tuple[str, dict]] = {
    "GELUActivation": ("gelu", {}),
    "ClippedGELUActivation": ("gelu", {}),  # GELU clipped to [-10, 10]: GELU at init scales
    "NewGELUActivation": ("gelu", {"approximate": "tanh"}),
    "FastGELUActivation": ("gelu", {"approximate": "tanh"}),
    "AccurateGELUActivation": ("gelu", {"approximate": "tanh"}),
    "GELUTanh": ("gelu", {"approximate": "tanh"}),
    "PytorchGELUTanh": ("gelu", {"approximate": "tanh"}),
    "SiLUActivation": ("silu", {}),
    "MishActivation": ("mish", {}),
    "LinearActivation": ("identity", {}),
}

# functional callables seen in traces -> name (options taken from call kwargs)
FUNCTIONS: dict[Any, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    F.relu_: "relu",
    torch.relu_: "relu",
    F.leaky_relu: "leaky_relu",
    torch.tanh: "tanh",
    F.tanh: "tanh",
    torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
    F.selu: "selu",
    torch.selu: "selu",
    F.gelu: "gelu",
    F.silu: "silu",
    F.elu: "elu",
    F.celu: "celu",
    F.mish: "mish",
    F.softplus: "softplus",
    F.relu6: "relu6",
    F.hardtanh: "hardtanh",
    F.softsign: "softsign",
    "relu": "relu",
    "relu_": "relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "tanh_": "tanh",
    "sigmoid_": "sigmoid",
}


def names() -> list[str]:
    """Canonical activation names."""
    return sorted(_TABLE)


def from_module(module: nn.Module) -> Activation | None:
    """The activation an ``nn.Module`` computes, or None when it is not an elementwise one."""
    reader = _MODULES.get(type(module))
    if reader is None:
        cls = type(module)
        if cls.__module__.startswith("transformers") and cls.__name__ in _HF_MODULES:
            name, options = _HF_MODULES[cls.__name__]
            return Activation(name, dict(options))
        return None
    name, options = reader(module)
    return Activation(name, options)


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
        d = dict(spec)
        name = d.pop("name", None)
        if name is None:
            raise InitSpecError("An activation dict needs a 'name' key, e.g. {'name': 'relu'}.")
        parsed_name, options = str(name), d
    else:
        parsed = parse_spec(str(spec))
        if parsed.args:
            raise InitSpecError(f"Activation {spec!r}: give options as KEY=VALUE.")
        parsed_name, options = parsed.name, dict(parsed.kwargs)
    name = _ALIASES.get(parsed_name.lower(), parsed_name.lower())
    if name not in _TABLE:
        raise InitSpecError(unknown_name("activation", parsed_name, names()))
    allowed = _OPTIONS.get(name, set())
    for key in options:
        if key not in allowed:
            hint = f" Allowed: {', '.join(sorted(allowed))}." if allowed else " It takes none."
            raise InitSpecError(f"Unknown option {key!r} for activation '{name}'.{hint}")
    return Activation(name, dict(options))
