"""Tensor-level initializers, like ``torch.nn.init``: every formula scheme of the registry as a
function that fills one tensor in place, from an explicit generator.

``init.he_normal_(w)`` is ``init.fill_(w, "he_normal")``; every registered formula scheme
has one (``xavier_uniform_``, ``lecun_normal_``, ``trunc_normal_``, ``orthogonal_``,
``random_normal_``, ... and the aliases, ``kaiming_normal_``, ``glorot_uniform_``), with the
scheme's options as keywords. Fans follow PyTorch's shape rule (``fan_in`` = dim 1 x the
receptive field) unless given; ``activation=`` sets the gain of ``auto``. Model-level
procedures (LSUV, DBN, the residual schemes) and ``torch_default`` need a whole model or
its layers: use :func:`initlab.init_` for those.

>>> import torch
>>> from initlab import init
>>> w = torch.empty(256, 128)
>>> init.he_normal_(w, generator=torch.Generator().manual_seed(0)) is w
True
>>> round(float(w.std()) / (2 / 128) ** 0.5, 2)
1.0
>>> init.variance_scaling_(w, scale=2.0, mode="fan_out", generator=torch.Generator()).shape
torch.Size([256, 128])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from initlab.activations import resolve
from initlab.errors import InitSpecError
from initlab.initializers.apply import default_generator
from initlab.initializers.fans import tensor_fans
from initlab.initializers.registry import REGISTRY, LayerContext, ModelProcedure, get

_NEEDS_A_MODEL = ("torch_default",)  # its rule depends on the layer type


def fill_(
    tensor: torch.Tensor,
    scheme: Any,
    *,
    generator: torch.Generator | None = None,
    fan_in: int | None = None,
    fan_out: int | None = None,
    activation: Any = None,
) -> torch.Tensor:
    """Fill ``tensor`` in place with ``scheme`` (a name, spec string, dict or Initializer) and
    return it. Draws are float32 on the generator's device (``None``: a generator seeded 0),
    then cast to the tensor, as :func:`initlab.init_` does.

    >>> t = fill_(torch.empty(3, 4), "constant:value=0.5")
    >>> t.unique().tolist()
    [0.5]
    """
    spec = get(scheme)
    if isinstance(spec, ModelProcedure) or spec.name in _NEEDS_A_MODEL:
        raise InitSpecError(
            f"'{spec.name}' needs a whole model (or its layers), not one tensor: use "
            f"initlab.init_(model, '{spec.to_spec()}')."
        )
    shape = tuple(tensor.shape)
    default_in, default_out = tensor_fans(shape)
    ctx = LayerContext(
        fan_in=default_in if fan_in is None else int(fan_in),
        fan_out=default_out if fan_out is None else int(fan_out),
        shape=shape,
        activation=None if activation is None else resolve(activation),
    )
    generator = default_generator() if generator is None else generator
    with torch.no_grad():
        values = spec.sample(shape, ctx, generator, generator.device)
        tensor.copy_(values.to(device=tensor.device, dtype=tensor.dtype))
    return tensor


def _named(name: str) -> Callable[..., torch.Tensor]:
    """``<name>_(tensor, *, generator, fan_in, fan_out, activation, **options)``."""

    def fill(tensor: torch.Tensor, *, generator: torch.Generator | None = None,
             fan_in: int | None = None, fan_out: int | None = None, activation: Any = None,
             **options: Any) -> torch.Tensor:  # fmt: skip
        scheme = {"name": name, **options} if options else name
        return fill_(tensor, scheme, generator=generator, fan_in=fan_in, fan_out=fan_out,
                     activation=activation)  # fmt: skip

    canonical = get(name)
    fill.__name__ = fill.__qualname__ = f"{name}_"
    fill.__doc__ = (
        f"Fill ``tensor`` in place with '{canonical.name}' ({canonical.formula}); keyword "
        "options as in the spec grammar. See :func:`fill_`."
    )
    return fill


def _tensor_schemes() -> list[str]:
    """Names and aliases of the schemes that fill a tensor alone."""
    out = []
    for name in REGISTRY.names() + sorted(REGISTRY.aliases()):
        spec_cls = REGISTRY.cls(name)
        if issubclass(spec_cls, ModelProcedure) or spec_cls.name in _NEEDS_A_MODEL:
            continue
        out.append(name)
    return out


SCHEMES = _tensor_schemes()
for _name in SCHEMES:
    globals()[f"{_name}_"] = _named(_name)

__all__ = ["SCHEMES", "fill_", *(f"{n}_" for n in SCHEMES)]
