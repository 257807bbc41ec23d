"""The initializer registry: one decorated definition per scheme, found by name, dict or spec.

>>> get("normal:std=0.01")
Normal(mean=0.0, std=0.01)
>>> get(get("he_normal").to_config()) == get("he_normal")
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, ClassVar

import torch

from initlab.registry import Configurable, Registry


@dataclasses.dataclass(frozen=True)
class LayerContext:
    """What a scheme may know about the tensor it fills.

    >>> ctx = LayerContext(fan_in=100, fan_out=10, shape=(10, 100))
    >>> round(get("he_normal").target_std(ctx), 4), round(get("lecun_normal").target_std(ctx), 4)
    (0.1414, 0.1)
    """

    fan_in: int
    fan_out: int
    shape: tuple[int, ...] = ()
    activation: Any = None  # the Activation that follows the layer, when known
    module: Any = None  # the nn.Module owning the parameter
    param_name: str = ""
    torch_fan_in: int = 0  # PyTorch's own fan_in for the whole tensor (torch_default)


class Initializer(Configurable):
    """Base of every scheme. Subclasses are frozen dataclasses registered with @register.

    Formula schemes implement :meth:`sample` (a float32 tensor of ``shape``). Data-driven
    schemes set ``data_driven = True`` and implement ``apply(model, data, generator, ...)``.

    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)  # with @register("half_normal") above: a named scheme
    ... class HalfNormal(Initializer):
    ...     std: float = 1.0
    ...     def sample(self, shape, ctx, generator, device, out=None):
    ...         return torch.randn(shape, generator=generator, device=device).abs() * self.std
    >>> g = torch.Generator().manual_seed(0)
    >>> w = HalfNormal(std=0.1).sample((3, 4), LayerContext(fan_in=4, fan_out=3), g, "cpu")
    >>> w.shape, bool((w >= 0).all())
    (torch.Size([3, 4]), True)
    """

    formula: ClassVar[str] = ""
    data_driven: ClassVar[bool] = False  # needs data= (LSUV, DBN)
    model_level: ClassVar[bool] = False  # works on the whole model via apply() (residual)
    per_block: ClassVar[bool] = True  # fill RNN gate / packed-attention blocks one by one
    owns_bias: ClassVar[bool] = False  # with bias=None, biases use this scheme (torch_default)

    def sample(
        self,
        shape: tuple[int, ...],
        ctx: LayerContext,
        generator: torch.Generator,
        device,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw a float32 tensor of ``shape``; schemes may draw into ``out`` (same shape,
        float32, on ``device``) to save a copy, and return it."""
        raise NotImplementedError

    def target_std(self, ctx: LayerContext) -> float | None:
        """The std the scheme aims for on this tensor (None when it is not defined)."""
        return None

    def gain_for(self, ctx: LayerContext) -> float | None:
        """The factor on a LeCun std ``1/sqrt(fan)``, for variance-scaling schemes."""
        return None

    def fill_order(
        self, model: torch.nn.Module, generator: torch.Generator
    ) -> Iterable[tuple[str, torch.nn.Module]]:
        """The (name, module) pairs ``fill_model`` visits, in order (default: pre-order,
        ``model.named_modules()``). Iterated lazily: each module's own parameters are drawn
        before the next pair is asked for, so an order may also move ``generator`` between
        modules (``torch_default`` replays construction order this way)."""
        return model.named_modules()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """The scheme of a ``to_config()`` dict (its ``name`` key is ignored), options checked
        and coerced as in :func:`get`."""
        return REGISTRY.build(cls, {k: v for k, v in config.items() if k != "name"}, repr(config))


REGISTRY = Registry("initializer", Initializer)
register = REGISTRY.register
names = REGISTRY.names
scheme_class = REGISTRY.cls


def get(spec: str | dict | Initializer) -> Initializer:
    """Resolve a scheme from an instance, a name, a ``"name:key=value"`` string or a dict.

    A JSON string of a config dict (as written by ``json.dumps(x.to_config())``) works too.

    >>> get("normal:std=0.02")
    Normal(mean=0.0, std=0.02)
    >>> get({"name": "kaiming_normal", "mode": "fan_out"}).to_spec()
    'he_normal:mode=fan_out'
    """
    return REGISTRY.get(spec)
