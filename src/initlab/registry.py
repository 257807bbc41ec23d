"""Registries of configurable things (initializers, schedules, optimizers...), one mechanism.

A :class:`Registry` maps canonical names and exact-synonym aliases to frozen dataclasses that
inherit :class:`Configurable`. ``registry.get(spec)`` accepts an instance, a name, a
``"name:key=value"`` string (see :mod:`initlab.specs`), a dict with a ``name`` key, or the JSON
of such a dict; options are checked against the dataclass fields and coerced to their types,
and every mistake is one :class:`InitSpecError` line with a suggestion.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, ClassVar

from initlab.errors import InitSpecError, unknown_name
from initlab.specs import format_spec, parse_spec


class Configurable:
    """Mixin for registered frozen dataclasses: configs and canonical spec strings."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()

    def to_config(self) -> dict[str, Any]:
        """A JSON-able dict; ``registry.get(config)`` rebuilds an equal instance."""
        config: dict[str, Any] = {"name": self.name}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            config[f.name] = list(value) if isinstance(value, tuple) else value
        return config

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


class Registry:
    """Names -> classes for one kind of thing (the kind names it in error messages)."""

    def __init__(self, kind: str, base: type) -> None:
        self.kind = kind
        self.base = base
        self._classes: dict[str, type] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, aliases: tuple[str, ...] = ()) -> Callable[[type], type]:
        """Class decorator: register under ``name`` and the exact-synonym ``aliases``.

        >>> import dataclasses
        >>> colors = Registry("color", Configurable)
        >>> @colors.register("red", aliases=("rouge",))
        ... @dataclasses.dataclass(frozen=True)
        ... class Red(Configurable):
        ...     shade: float = 1.0
        >>> colors.get("rouge:shade=0.5"), colors.get("red").to_spec()
        (Red(shade=0.5), 'red')
        """

        def wrap(cls: type) -> type:
            for key in (name, *aliases):
                if key in self._classes or key in self._aliases:
                    raise ValueError(f"{self.kind} name {key!r} registered twice")
            cls.name = name
            cls.aliases = tuple(aliases)
            self._classes[name] = cls
            self._aliases.update({alias: name for alias in aliases})
            return cls

        return wrap

    def names(self, include_aliases: bool = False) -> list[str]:
        """The registered names, sorted; with ``include_aliases`` the aliases too.

        >>> import initlab
        >>> "he_normal" in initlab.names(), "kaiming_normal" in initlab.names()
        (True, False)
        >>> "kaiming_normal" in initlab.names(include_aliases=True)
        True
        """
        out = sorted(self._classes)
        return sorted(out + list(self._aliases)) if include_aliases else out

    def cls(self, name: str) -> type:
        """The class of ``name`` or an alias; an unknown name is one InitSpecError line with
        the closest name."""
        canonical = self._aliases.get(name, name)
        if canonical not in self._classes:
            raise InitSpecError(unknown_name(self.kind, name, self.names(include_aliases=True)))
        return self._classes[canonical]

    def get(self, spec: Any) -> Any:
        """An instance from an instance, name, spec string, dict or JSON dict."""
        if isinstance(spec, self.base):
            return spec
        if isinstance(spec, dict):
            config = dict(spec)
            if "name" not in config:
                raise InitSpecError(
                    f"A {self.kind} dict needs a 'name' key, e.g. {{'name': "
                    f"'{self.names()[0] if self._classes else 'x'}'}}; got {spec!r}."
                )
            return self.build(self.cls(str(config.pop("name"))), config, repr(spec))
        if isinstance(spec, str):
            text = spec.strip()
            if text.startswith("{"):
                try:
                    return self.get(json.loads(text))
                except json.JSONDecodeError as e:
                    raise InitSpecError(
                        f"{self.kind} spec {spec!r} is not valid JSON: {e.msg}."
                    ) from e
            parsed = parse_spec(text)
            cls = self.cls(parsed.name)
            if parsed.args:
                raise InitSpecError(
                    f"The {self.kind} spec {spec!r} has a value without a key; write it as "
                    f"{parsed.name}:KEY=VALUE (keys: {_keys(cls) or 'none'})."
                )
            return self.build(cls, parsed.kwargs, repr(spec))
        raise InitSpecError(
            f"Cannot make a {self.kind} from {type(spec).__name__}; give a name, a "
            "'name:key=value' string or a dict."
        )

    def build(self, cls: type, kwargs: dict[str, Any], where: str) -> Any:
        """``cls(**kwargs)`` with every key checked against its fields and each value coerced to
        the field's type; every mistake is one InitSpecError line that names ``where``."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key not in fields:
                hint = unknown_name(f"option for {self.kind} '{cls.name}'", key, fields)
                hint = hint.split(" Allowed:")[0]
                raise InitSpecError(f"{hint} Allowed: {_keys(cls) or 'no options'}. (in {where})")
            clean[key] = _coerce(f"{self.kind} '{cls.name}'", key, value, fields[key].type)
        try:
            return cls(**clean)
        except (TypeError, ValueError) as e:
            if isinstance(e, InitSpecError):
                raise
            raise InitSpecError(f"Bad options for {self.kind} '{cls.name}' in {where}: {e}") from e


def _keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


_TYPES: dict[str, tuple[type, ...]] = {"float": (int, float), "int": (int,), "bool": (bool,),
                                       "str": (str,)}  # fmt: skip


def _coerce(owner: str, key: str, value: Any, annotation: Any) -> Any:
    """Check a value against a simple field annotation ('float', 'int', 'bool', 'str', tuples)."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    kind = kind.replace(" ", "")
    if kind.startswith("tuple["):
        items = value if isinstance(value, (tuple, list)) else (value,)
        inner = kind[len("tuple[") : -1].split(",")[0]
        return tuple(_coerce(owner, key, v, inner) for v in items)
    allowed = _TYPES.get(kind.removesuffix("|None"))
    if allowed is None or (value is None and kind.endswith("|None")):
        return value
    ok = isinstance(value, allowed) and not (kind != "bool" and isinstance(value, bool))
    if not ok:
        raise InitSpecError(f"Option {key}={value!r} of {owner} must be a {kind}.")
    return float(value) if kind.startswith("float") else value
