"""The initializer registry: one decorated definition per scheme, found by name, dict or spec.

>>> get("normal:std=0.01")
Normal(mean=0.0, std=0.01)
>>> get(get("he_normal").to_config()) == get("he_normal")
True
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from initlab.errors import InitSpecError, unknown_name
from initlab.specs import format_spec, parse_spec

_REGISTRY: dict[str, type[Initializer]] = {}
_ALIASES: dict[str, str] = {}


@dataclasses.dataclass(frozen=True)
class LayerContext:
    """What a scheme may know about the tensor it fills."""

    fan_in: int
    fan_out: int
    shape: tuple[int, ...] = ()
    activation: Any = None  # the Activation that follows the layer, when known
    module: Any = None  # the nn.Module owning the parameter
    param_name: str = ""
    torch_fan_in: int = 0  # PyTorch's own fan_in for the whole tensor (torch_default)


class Initializer:
    """Base of every scheme. Subclasses are frozen dataclasses registered with @register.

    Formula schemes implement :meth:`sample` (a float32 tensor of ``shape``). Data-driven
    schemes set ``data_driven = True`` and implement ``apply(model, data, generator, ...)``.
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    formula: ClassVar[str] = ""
    data_driven: ClassVar[bool] = False
    per_block: ClassVar[bool] = True  # fill RNN gate / packed-attention blocks one by one
    owns_bias: ClassVar[bool] = False  # with bias=None, biases use this scheme (torch_default)

    def sample(
        self, shape: tuple[int, ...], ctx: LayerContext, generator: torch.Generator, device
    ) -> torch.Tensor:
        raise NotImplementedError

    def target_std(self, ctx: LayerContext) -> float | None:
        """The std the scheme aims for on this tensor (None when it is not defined)."""
        return None

    def gain_for(self, ctx: LayerContext) -> float | None:
        """The factor on a LeCun std ``1/sqrt(fan)``, for variance-scaling schemes."""
        return None

    def to_config(self) -> dict[str, Any]:
        """A JSON-able dict; ``get(config)`` rebuilds an equal instance."""
        config: dict[str, Any] = {"name": self.name}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            config[f.name] = list(value) if isinstance(value, tuple) else value
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        return _build(cls, {k: v for k, v in config.items() if k != "name"}, repr(config))

    def to_spec(self) -> str:
        """The canonical spec string (only fields that differ from the defaults)."""
        changed = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.default is dataclasses.MISSING or value != f.default:
                changed[f.name] = value
        return format_spec(self.name, changed)

    def __str__(self) -> str:
        return self.to_spec()


def register(name: str, aliases: tuple[str, ...] = ()) -> Callable[[type], type]:
    """Class decorator: register a scheme under ``name`` and exact-synonym ``aliases``."""

    def wrap(cls: type) -> type:
        for key in (name, *aliases):
            if key in _REGISTRY or key in _ALIASES:
                raise ValueError(f"initializer name {key!r} registered twice")
        cls.name = name
        cls.aliases = tuple(aliases)
        _REGISTRY[name] = cls
        for alias in aliases:
            _ALIASES[alias] = name
        return cls

    return wrap


def names(include_aliases: bool = False) -> list[str]:
    """Canonical scheme names (and aliases when asked)."""
    out = sorted(_REGISTRY)
    return sorted(out + list(_ALIASES)) if include_aliases else out


def scheme_class(name: str) -> type[Initializer]:
    canonical = _ALIASES.get(name, name)
    if canonical not in _REGISTRY:
        raise InitSpecError(unknown_name("initializer", name, names(include_aliases=True)))
    return _REGISTRY[canonical]


def get(spec: str | dict | Initializer) -> Initializer:
    """Resolve a scheme from an instance, a name, a ``"name:key=value"`` string or a dict.

    A JSON string of a config dict (as written by ``json.dumps(x.to_config())``) works too.
    """
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, dict):
        config = dict(spec)
        if "name" not in config:
            raise InitSpecError(
                f"Initializer dict {spec!r} has no 'name' key; e.g. {{'name': 'he_normal'}}."
            )
        cls = scheme_class(str(config.pop("name")))
        return _build(cls, config, repr(spec))
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                return get(json.loads(text))
            except json.JSONDecodeError as e:
                raise InitSpecError(f"Initializer spec {spec!r} is not valid JSON: {e.msg}.") from e
        parsed = parse_spec(text)
        cls = scheme_class(parsed.name)
        if parsed.args:
            raise InitSpecError(
                f"Initializer spec {spec!r} has a value without a key; write it as "
                f"{parsed.name}:KEY=VALUE (keys: {_keys(cls) or 'none'})."
            )
        return _build(cls, parsed.kwargs, repr(spec))
    raise InitSpecError(
        f"Cannot make an initializer from {type(spec).__name__}; give a name, a "
        "'name:key=value' string, a dict or an Initializer."
    )


def _keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _build(cls: type, kwargs: dict[str, Any], where: str) -> Initializer:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    clean: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key not in fields:
            allowed = _keys(cls) or "no options"
            hint = unknown_name(f"option for '{cls.name}'", key, fields).split(" Allowed:")[0]
            raise InitSpecError(f"{hint} Allowed: {allowed}. (in {where})")
        clean[key] = _coerce(cls.name, key, value, fields[key].type)
    try:
        return cls(**clean)
    except (TypeError, ValueError) as e:
        raise InitSpecError(f"Bad options for initializer '{cls.name}' in {where}: {e}") from e


def _coerce(scheme: str, key: str, value: Any, annotation: Any) -> Any:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    try:
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError
            return float(value)
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError
            return value
    except TypeError:
        raise InitSpecError(
            f"Option {key}={value!r} of initializer '{scheme}' must be a {kind}."
        ) from None
    return value
