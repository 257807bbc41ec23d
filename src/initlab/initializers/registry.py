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
    """Base of every initializer: a frozen dataclass registered with ``@register``, found by
    :func:`get`, with ``to_config`` / ``from_config``. It is one of two kinds, which
    :func:`~initlab.initializers.apply.init_` tells apart:

    * :class:`TensorScheme`: a formula that draws one tensor at a time (``sample``) from what
      it knows of the layer (:class:`LayerContext`); ``init_`` visits the parameters.
    * :class:`ModelProcedure`: works on the whole model (``apply``): LSUV and DBN (which need
      data), fixup and gpt2_residual (which find residual blocks).
    """

    formula: ClassVar[str] = ""

    @property
    def data_driven(self) -> bool:
        """Whether ``init_`` must be given ``data=`` (LSUV, DBN)."""
        return False

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """The scheme of a ``to_config()`` dict (its ``name`` key is ignored), options checked
        and coerced as in :func:`get`."""
        return REGISTRY.build(cls, {k: v for k, v in config.items() if k != "name"}, repr(config))


class TensorScheme(Initializer):
    """A formula scheme: :meth:`sample` draws a float32 tensor of a given shape.

    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)  # with @register("half_normal") above: a named scheme
    ... class HalfNormal(TensorScheme):
    ...     std: float = 1.0
    ...     def sample(self, shape, ctx, generator, device, out=None):
    ...         return torch.randn(shape, generator=generator, device=device).abs() * self.std
    >>> g = torch.Generator().manual_seed(0)
    >>> w = HalfNormal(std=0.1).sample((3, 4), LayerContext(fan_in=4, fan_out=3), g, "cpu")
    >>> w.shape, bool((w >= 0).all())
    (torch.Size([3, 4]), True)
    """

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


class ModelProcedure(Initializer):
    """A model-level procedure: :meth:`apply` initializes the whole model in place and returns
    an :class:`~initlab.initializers.init_report.InitReport`. ``needs_data`` procedures
    (LSUV, DBN) are given ``data=``; the others must not be."""

    needs_data: ClassVar[bool] = False

    @property
    def data_driven(self) -> bool:
        """Whether ``init_`` must be given ``data=``."""
        return self.needs_data

    def apply(self, model: torch.nn.Module, *, data, generator: torch.Generator, bias, rules,
              example_input):  # fmt: skip
        """Initialize ``model`` in place; return its InitReport."""
        raise NotImplementedError


def _check_kind(cls: type) -> None:
    if not issubclass(cls, (TensorScheme, ModelProcedure)):
        raise TypeError(
            f"{cls.__name__} must subclass TensorScheme (a formula: sample) or ModelProcedure "
            "(the whole model: apply), not Initializer directly."
        )


REGISTRY = Registry("initializer", Initializer)


def register(name: str, *, aliases: Iterable[str] = ()):
    """Decorator registering an initializer class under ``name`` (and ``aliases``); the class
    must be a :class:`TensorScheme` or a :class:`ModelProcedure`."""

    def decorate(cls: type) -> type:
        _check_kind(cls)
        return REGISTRY.register(name, cls, aliases=aliases)

    return decorate


names = REGISTRY.names
scheme_class = REGISTRY.cls


def scheme_kind(cls: type[Initializer]) -> str:
    """``formula``, ``data-driven`` or ``model-level``: what ``initlab list-inits`` shows.

    >>> scheme_kind(scheme_class("he_normal")), scheme_kind(scheme_class("lsuv"))
    ('formula', 'data-driven')
    """
    if issubclass(cls, ModelProcedure):
        return "data-driven" if cls.needs_data else "model-level"
    return "formula"


def get(spec: str | dict | Initializer) -> Initializer:
    """Resolve a scheme from an instance, a name, a ``"name:key=value"`` string or a dict.

    A JSON string of a config dict (as written by ``json.dumps(x.to_config())``) works too.

    >>> get("normal:std=0.02")
    Normal(mean=0.0, std=0.02)
    >>> get({"name": "kaiming_normal", "mode": "fan_out"}).to_spec()
    'he_normal:mode=fan_out'
    """
    return REGISTRY.get(spec)
