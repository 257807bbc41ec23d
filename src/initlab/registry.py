"""Registries of named things (initializers, optimizers, schedules, datasets, presets,
activations...), one mechanism.

A :class:`Registry` maps canonical names and exact-synonym aliases to entries: classes
registered with a decorator (``@REGISTRY.register("name", aliases=(...))``) or any other
object registered by a call (``REGISTRY.register("name", entry)``). Every registry lists its
names with an optional glob (``names("he_*")``, as timm's ``list_models("resnet*")``),
resolves aliases (``canonical``, ``entry``), and answers an unknown name with one error line
that names the closest one.

When the entries are frozen dataclasses that inherit :class:`Configurable`,
``registry.get(spec)`` accepts an instance, a name, a ``"name:key=value"`` string (see
:mod:`initlab.specs`), a dict with a ``name`` key, or the JSON of such a dict; options are
checked against the dataclass fields and coerced to their types, and every mistake is one
:class:`InitSpecError` line with a suggestion.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from initlab.errors import InitSpecError, did_you_mean, unknown_name
from initlab.specs import format_spec, parse_spec

_DECORATE = object()  # register(name) without an entry: return a decorator


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
    """Names -> entries for one kind of thing (the kind names it in error messages).

    ``base``: the :class:`Configurable` class of the entries, for :meth:`get`; ``normalize``:
    how a name is spelled before it is looked up (e.g. ``str.lower``; registered names must
    already be in that form); ``error``: the exception an unknown name raises.

    >>> sizes = Registry("size", normalize=str.lower)
    >>> sizes.register("small", 1, aliases=("s",)), sizes.register("large", 3)
    (1, 3)
    >>> sizes.entry("S"), sizes.canonical("Large"), sizes.names("s*"), sizes.aliases()
    (1, 'large', ['small'], {'s': 'small'})
    >>> sizes.entry("smal")
    Traceback (most recent call last):
    initlab.errors.InitSpecError: Unknown size 'smal'. Did you mean 'small'? Allowed: large, s, small.
    """

    def __init__(
        self,
        kind: str,
        base: type | None = None,
        *,
        normalize: Callable[[str], str] | None = None,
        error: type[Exception] = InitSpecError,
    ) -> None:
        self.kind = kind
        self.base = base
        self.normalize = normalize or _same
        self.error = error
        self._entries: dict[str, Any] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, entry: Any = _DECORATE, *, aliases: Iterable[str] = ()) -> Any:
        """Register ``entry`` under ``name`` and the exact-synonym ``aliases``, and return it;
        without an entry, a decorator that registers what it decorates. A Configurable class
        learns its ``name`` and ``aliases``.

        >>> import dataclasses
        >>> colors = Registry("color", Configurable)
        >>> @colors.register("red", aliases=("rouge",))
        ... @dataclasses.dataclass(frozen=True)
        ... class Red(Configurable):
        ...     shade: float = 1.0
        >>> colors.get("rouge:shade=0.5"), colors.get("red").to_spec()
        (Red(shade=0.5), 'red')
        """
        aliases = tuple(aliases)

        def add(obj: Any) -> Any:
            for key in (name, *aliases):
                if self.normalize(key) != key:
                    raise ValueError(f"{self.kind} name {key!r} is not spelled as it is looked up")
                if key in self._entries or key in self._aliases:
                    raise ValueError(f"{self.kind} name {key!r} registered twice")
            if isinstance(obj, type) and issubclass(obj, Configurable):
                obj.name = name
                obj.aliases = aliases
            self._entries[name] = obj
            self._aliases.update({alias: name for alias in aliases})
            return obj

        return add if entry is _DECORATE else add(entry)

    def names(
        self, pattern: str | Iterable[str] | None = None, *, include_aliases: bool = False
    ) -> list[str]:
        """The registered names, sorted; with ``include_aliases`` the aliases too. A glob
        ``pattern`` (or several) keeps the names it matches (``fnmatch``: ``*``, ``?``,
        ``[...]``), spelled as the registry looks names up.

        >>> import initlab
        >>> "he_normal" in initlab.names(), "kaiming_normal" in initlab.names()
        (True, False)
        >>> "kaiming_normal" in initlab.names(include_aliases=True)
        True
        >>> initlab.names("he_*")
        ['he_normal', 'he_uniform']
        """
        out = [*self._entries, *(self._aliases if include_aliases else ())]
        if pattern is not None:
            patterns = [pattern] if isinstance(pattern, str) else pattern
            globs = [self.normalize(p) for p in patterns]
            out = [n for n in out if any(fnmatchcase(n, g) for g in globs)]
        return sorted(out)

    def aliases(self) -> dict[str, str]:
        """Alias -> canonical name, for every alias."""
        return dict(self._aliases)

    def items(self) -> list[tuple[str, Any]]:
        """(canonical name, entry) pairs, in the order they were registered."""
        return list(self._entries.items())

    def canonical(self, name: str) -> str:
        """The canonical name of ``name`` or an alias; an unknown name is one error line with
        the closest name."""
        key = self.normalize(str(name))
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise self.error(unknown_name(self.kind, name, self.names(include_aliases=True)))
        return key

    def entry(self, name: str) -> Any:
        """The entry of ``name`` or an alias (an unknown name: one line, see :meth:`canonical`)."""
        return self._entries[self.canonical(name)]

    cls = entry  # the name for registries of classes

    def parse(self, spec: Any) -> tuple[str, dict[str, Any]]:
        """The canonical name and the options of a ``"name:key=value"`` spec (keys only).

        >>> sizes = Registry("size")
        >>> _ = sizes.register("small", 1)
        >>> sizes.parse("small:scale=2")
        ('small', {'scale': 2})
        """
        parsed = parse_spec(str(spec))
        name = self.canonical(parsed.name)
        if parsed.args:
            raise self.error(f"{self.kind.capitalize()} {spec!r}: give options as KEY=VALUE.")
        return name, dict(parsed.kwargs)

    def check_options(self, name: str, options: Iterable[str], allowed: Iterable[str]) -> None:
        """One error line for the first of ``options`` that ``name`` does not take."""
        allowed = sorted(allowed)
        for key in options:
            if key not in allowed:
                hint = did_you_mean(key, allowed) + f" Allowed: {', '.join(allowed)}."
                raise self.error(
                    f"Unknown option {key!r} for {self.kind} '{name}'."
                    + (hint if allowed else " It takes none.")
                )

    def __getitem__(self, name: str) -> Any:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} names)"

    def get(self, spec: Any) -> Any:
        """An instance from an instance, name, spec string, dict or JSON dict (registries of
        Configurable classes)."""
        if self.base is None:
            raise TypeError(f"The {self.kind} registry has no Configurable base; use entry().")
        if isinstance(spec, self.base):
            return spec
        if isinstance(spec, dict):
            config = dict(spec)
            if "name" not in config:
                raise InitSpecError(
                    f"A {self.kind} dict needs a 'name' key, e.g. {{'name': "
                    f"'{self.names()[0] if self._entries else 'x'}'}}; got {spec!r}."
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


def _same(name: str) -> str:
    return name


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
