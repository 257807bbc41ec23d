"""The one spec grammar every initlab option uses (initializers, optimizers, schedules, models).

    SPEC := NAME [":" ITEM ("," ITEM)*]
    ITEM := KEY "=" VALUE | VALUE          (bare values are positional, before any KEY=VALUE)

A bare number right after a value extends that value to a tuple::

    >>> parse_spec("adam:betas=0.89,0.999,eps=1e-7")
    Spec(name='adam', args=(), kwargs={'betas': (0.89, 0.999), 'eps': 1e-07})

In a comma-separated list of specs, a token that has no ``=`` and is not a number starts the
next spec::

    >>> split_specs("normal:std=0.01,lecun_normal,he_normal")
    ['normal:std=0.01', 'lecun_normal', 'he_normal']

Values are read as int, float, bool (``true``/``false``), ``none`` or else a string.
A name may itself contain ``:`` only when it is a ``package.module:factory`` path (a dot
before the colon and no ``=`` after it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from initlab.errors import InitSpecError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.IGNORECASE)


@dataclass(frozen=True)
class Spec:
    """A parsed spec: a name, positional values and keyword values."""

    name: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return format_spec(self.name, self.kwargs, self.args)


def is_number(token: str) -> bool:
    """Does ``token`` read as a number (``3``, ``-0.5``, ``1e-3``, ``inf``, ``nan``)?"""
    return bool(_NUMBER.match(token.strip()))


def parse_value(token: str) -> Any:
    """Turn one value token into int, float, bool, None or str."""
    t = token.strip()
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    if is_number(t):
        if re.fullmatch(r"[+-]?\d+", t):
            return int(t)
        return float(t)
    return t


def format_value(value: Any) -> str:
    """Inverse of :func:`parse_value` (tuples become comma-joined numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return repr(float(value))
        return repr(value)
    return str(value)


def format_spec(name: str, kwargs: dict[str, Any] | None = None, args: tuple = ()) -> str:
    """Write a spec string that :func:`parse_spec` reads back to the same values."""
    items = [format_value(a) for a in args]
    items += [f"{k}={format_value(v)}" for k, v in (kwargs or {}).items()]
    return f"{name}:{','.join(items)}" if items else name


def _starts_spec(token: str) -> bool:
    """In a list of specs, does this comma-separated token begin a new spec?"""
    t = token.strip()
    if ":" in t:
        return True
    return "=" not in t and not is_number(t)


def split_specs(text: str | list | tuple) -> list[str]:
    """Split a comma-separated list of specs (or a repeated option's values) into spec strings."""
    if isinstance(text, (list, tuple)):
        out: list[str] = []
        for item in text:
            out.extend(split_specs(item))
        return out
    text = str(text).strip()
    if not text:
        raise InitSpecError("Empty spec list. Give at least one spec, e.g. 'he_normal'.")
    specs: list[list[str]] = []
    for token in text.split(","):
        token = token.strip()
        if not token:
            raise InitSpecError(f"Empty item in spec list {text!r}: remove the doubled comma.")
        if not specs or _starts_spec(token):
            specs.append([token])
        else:
            specs[-1].append(token)
    return [",".join(parts) for parts in specs]


def _split_name(text: str) -> tuple[str, str]:
    """Split 'name:rest', keeping 'package.module:factory' (and its args) together."""
    if ":" not in text:
        return text, ""
    head, rest = text.split(":", 1)
    # package.module:factory[:args] keeps the factory in the name
    if "." in head and rest:
        factory, _, more = rest.partition(":")
        if _KEY.match(factory) and not is_number(factory):
            return f"{head}:{factory}", more
    return head, rest


def parse_spec(text: str) -> Spec:
    """Parse one spec string. Raises :class:`InitSpecError` with one line on bad input."""
    if not isinstance(text, str):
        raise InitSpecError(f"A spec must be a string, got {type(text).__name__}.")
    raw = text
    text = text.strip()
    if not text:
        raise InitSpecError("Empty spec. Give a name such as 'he_normal' or 'normal:std=0.01'.")
    name, rest = _split_name(text)
    name = name.strip()
    base = name.split(":", 1)[0]
    if not _NAME.match(base):
        raise InitSpecError(
            f"Bad spec name {name!r} in {raw!r}: a name starts with a letter and holds letters, "
            "digits, '_', '-' or '.'; write options as NAME:KEY=VALUE,KEY=VALUE."
        )
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    last_key: str | None = None  # None before any key; "" while filling positional args
    if rest.strip() == "" and text.endswith(":"):
        raise InitSpecError(f"Spec {raw!r} ends with ':' but gives no options; drop the ':'.")
    if rest:
        for token in rest.split(","):
            token = token.strip()
            if not token:
                raise InitSpecError(f"Empty option in spec {raw!r}: remove the doubled comma.")
            if "=" in token:
                key, _, value = token.partition("=")
                key = key.strip()
                if not _KEY.match(key):
                    raise InitSpecError(
                        f"Bad option name {key!r} in spec {raw!r}: use letters, digits and '_'."
                    )
                if key in kwargs:
                    raise InitSpecError(f"Option {key!r} is given twice in spec {raw!r}.")
                if value.strip() == "":
                    raise InitSpecError(f"Option {key!r} in spec {raw!r} has no value.")
                kwargs[key] = parse_value(value)
                last_key = key
            elif last_key and is_number(token) and _is_numeric(kwargs[last_key]):
                prev = kwargs[last_key]
                prev = prev if isinstance(prev, tuple) else (prev,)
                kwargs[last_key] = prev + (parse_value(token),)
            elif last_key is None:
                args.append(parse_value(token))
            else:
                raise InitSpecError(
                    f"Cannot read {token!r} in spec {raw!r}: after KEY=VALUE only numbers may "
                    "follow (to make a tuple); write it as KEY=VALUE."
                )
    return Spec(name=name, args=tuple(args), kwargs=kwargs)


def _is_numeric(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_is_numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)
