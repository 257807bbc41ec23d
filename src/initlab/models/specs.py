"""Models from short specs: ``mlp:100x4``, ``mlp:256,256``, ``cnn:32,64``, ``module:factory``.

>>> build("mlp:100x2", activation="relu", in_shape=(1, 28, 28), n_classes=10)
Sequential(
  (0): Flatten(start_dim=1, end_dim=-1)
  (1): Linear(in_features=784, out_features=100, bias=True)
  (2): ReLU()
  (3): Linear(in_features=100, out_features=100, bias=True)
  (4): ReLU()
  (5): Linear(in_features=100, out_features=10, bias=True)
)

* ``mlp:W1,W2,...``: hidden widths; ``WxD`` repeats width W D times (``mlp:100x4``).
  Each hidden block is Linear, [BatchNorm1d], activation, [Dropout]; then a Linear head.
  ``dropout`` is one rate for every hidden layer or one per layer (``dropout=0.2,0.5``).
* ``cnn:C1,C2,...``: per entry a Conv2d (kernel ``kernel=3``, same padding), [BatchNorm2d],
  activation, MaxPool2d(2); then Flatten, [Dropout], an optional hidden Linear of width
  ``dense`` (default 0: none) with activation and [Dropout], and a Linear head.
* ``module:function`` (``mymodels:make``, ``package.module:function``, options after a second
  colon: ``mymodels:make:width=64``): any factory returning an ``nn.Module``, as in uvicorn or
  entry points, whenever ``module`` is not a built-in family (built-ins keep priority); it is
  called with the keyword options of the spec plus whichever of ``activation``, ``in_shape``,
  ``n_classes``, ``bias``, ``batchnorm``, ``dropout`` its signature accepts.

Options ``bias``, ``batchnorm`` and ``dropout`` may also be given in an mlp/cnn spec
(``mlp:256,256,dropout=0.5``); there they take precedence over the keyword arguments.
All models are plain ``nn.Sequential`` stacks, so the stacked trainer runs them with batched
kernels (see :mod:`initlab.models.stacked`).
"""

from __future__ import annotations

import inspect
import re
from math import prod
from typing import Any

from torch import nn

from initlab.activations import resolve
from initlab.errors import InitSpecError, did_you_mean, unknown_name
from initlab.models.factory import call_factory, load_factory
from initlab.specs import Spec, format_spec, parse_spec

BUILTIN = ("mlp", "cnn")
_COMMON = {"bias": bool, "batchnorm": bool, "dropout": float}
_EXTRA = {"mlp": {}, "cnn": {"kernel": int, "dense": int}}
_REPEAT = re.compile(r"^(\d+)x(\d+)$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def is_factory(name: str) -> bool:
    """Is ``name`` a ``module:function`` path rather than a built-in family?"""
    head = name.split(":", 1)[0].strip()
    return ":" in name and head.lower() not in BUILTIN


def _factory_spec(text: str) -> Spec | None:
    """``module:function[:KEY=VALUE,...]`` with a top-level ``module`` (no dot) that is not a
    built-in family, as a Spec named ``module:function``; None for anything else (dotted
    paths are kept together by :func:`~initlab.specs.parse_spec` itself)."""
    head, colon, rest = text.strip().partition(":")
    head = head.strip()
    if not colon or "." in head or head.lower() in BUILTIN or not _DOTTED.match(head):
        return None
    function, colon, options = rest.partition(":")
    function = function.strip()
    if not _DOTTED.match(function):
        return None
    if colon and not options.strip():
        raise InitSpecError(f"Spec {text!r} ends with ':' but gives no options; drop the ':'.")
    parsed = parse_spec(f"{head}:{options}") if colon else Spec(head)
    return Spec(f"{head}:{function}", parsed.args, parsed.kwargs)


def parse_arch(arch: str) -> Spec:
    """Parse and check an arch spec; widths are expanded (``100x4`` -> four 100s).

    ``module:function[:options]`` names a model factory unless ``module`` is a built-in family.
    """
    spec = _factory_spec(str(arch)) or parse_spec(str(arch))
    if is_factory(spec.name):
        return spec
    family = spec.name.lower()
    if family not in BUILTIN:
        raise InitSpecError(
            unknown_name("architecture", spec.name, BUILTIN).rstrip(".")
            + ", or a factory 'module:function' (e.g. 'mymodels:make')."
        )
    widths: list[int] = []
    for item in spec.args:
        m = _REPEAT.match(item) if isinstance(item, str) else None
        if m:
            widths += [int(m.group(1))] * int(m.group(2))
        elif isinstance(item, int) and not isinstance(item, bool):
            widths.append(item)
        else:
            raise InitSpecError(
                f"Bad width {item!r} in {arch!r}: give widths as integers, e.g. '{family}:256,256' "
                f"or WIDTHxDEPTH such as '{family}:100x4'."
            )
    if not widths:
        raise InitSpecError(f"{arch!r} gives no widths; e.g. '{family}:100x4' or '{family}:32,64'.")
    if any(w < 1 for w in widths):
        raise InitSpecError(f"Widths in {arch!r} must be >= 1.")
    allowed = {**_COMMON, **_EXTRA[family]}
    kwargs: dict[str, Any] = {}
    for key, value in spec.kwargs.items():
        if key not in allowed:
            raise InitSpecError(
                unknown_name(f"option for '{family}'", key, allowed) + f" (in {arch!r})"
            )
        want = allowed[key]
        if key == "dropout" and isinstance(value, tuple) and family == "mlp":
            value = _dropout_rates(value, len(widths), arch)
        elif want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not want and not (family == "mlp" and isinstance(value, tuple)):
            raise InitSpecError(f"Option {key}={value!r} in {arch!r} must be a {want.__name__}.")
        kwargs[key] = value
    return Spec(family, tuple(widths), kwargs)


def _dropout_rates(value: tuple, hidden: int, arch: str) -> tuple[float, ...]:
    """Per-layer dropout rates of an mlp: one rate per hidden layer, each in [0, 1)."""
    if len(value) != hidden or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) for v in value
    ):
        raise InitSpecError(
            f"dropout={','.join(map(str, value))} in {arch!r}: give one rate, or one rate per "
            f"hidden layer ({hidden} here)."
        )
    return tuple(float(v) for v in value)


def canonical_arch(arch: str) -> str:
    """The canonical spec string of an architecture (widths written out, e.g. ``mlp:100,100``)."""
    spec = parse_arch(arch)
    return format_spec(spec.name, dict(sorted(spec.kwargs.items())), spec.args)


def build(
    arch: str,
    *,
    activation: str = "relu",
    in_shape: tuple[int, ...],
    n_classes: int,
    bias: bool = True,
    batchnorm: bool = False,
    dropout: float | tuple[float, ...] = 0.0,
) -> nn.Module:
    """Build a freshly (PyTorch-default) initialized model from an arch spec.

    Raises :class:`~initlab.errors.InitSpecError` with one line on a bad spec.
    """
    spec = parse_arch(arch)
    options: dict[str, Any] = {"bias": bias, "batchnorm": batchnorm, "dropout": dropout}
    if is_factory(spec.name):
        return _from_factory(spec, activation, tuple(in_shape), n_classes, options)
    options.update({k: spec.kwargs[k] for k in _COMMON if k in spec.kwargs})
    rates = options["dropout"]
    for rate in rates if isinstance(rates, tuple) else (rates,):
        if not 0.0 <= float(rate) < 1.0:
            raise InitSpecError(f"dropout={rate} is outside [0, 1).")
    if n_classes < 2:
        raise InitSpecError(f"n_classes={n_classes}: a classifier needs at least 2 classes.")
    act = resolve(activation)
    if spec.name == "mlp":
        return _mlp(list(spec.args), act, tuple(in_shape), n_classes, **options)
    return _cnn(list(spec.args), act, tuple(in_shape), n_classes, spec.kwargs, **options)


def _hidden(width: int, act, *, batchnorm: bool, dropout: float, norm) -> list[nn.Module]:
    layers: list[nn.Module] = [norm(width)] if batchnorm else []
    layers.append(act.module())
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


def _mlp(widths, act, in_shape, n_classes, *, bias, batchnorm, dropout) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = prod(in_shape)
    rates = dropout if isinstance(dropout, tuple) else (float(dropout),) * len(widths)
    for width, rate in zip(widths, rates, strict=True):
        layers.append(nn.Linear(fan_in, width, bias=bias))
        layers += _hidden(width, act, batchnorm=batchnorm, dropout=rate, norm=nn.BatchNorm1d)
        fan_in = width
    layers.append(nn.Linear(fan_in, n_classes, bias=bias))
    return nn.Sequential(*layers)


def _cnn(channels, act, in_shape, n_classes, kwargs, *, bias, batchnorm, dropout) -> nn.Sequential:
    if len(in_shape) != 3:
        raise InitSpecError(
            f"A cnn needs image input (channels, height, width); this dataset gives {in_shape}. "
            "Use an mlp."
        )
    kernel = int(kwargs.get("kernel", 3))
    dense = int(kwargs.get("dense", 0))
    if kernel < 1 or kernel % 2 == 0 or dense < 0:
        raise InitSpecError(f"cnn needs an odd kernel >= 1 and dense >= 0, got {kernel}, {dense}.")
    c_in, h, w = in_shape
    layers: list[nn.Module] = []
    for c in channels:
        layers.append(nn.Conv2d(c_in, c, kernel, padding=kernel // 2, bias=bias))
        layers += _hidden(c, act, batchnorm=batchnorm, dropout=0.0, norm=nn.BatchNorm2d)
        layers.append(nn.MaxPool2d(2))
        c_in, h, w = c, h // 2, w // 2
        if h < 1 or w < 1:
            raise InitSpecError(
                f"cnn:{','.join(map(str, channels))} pools {in_shape[1]}x{in_shape[2]} images "
                "down to nothing; use fewer conv layers."
            )
    layers.append(nn.Flatten())
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    fan_in = c_in * h * w
    if dense:
        layers.append(nn.Linear(fan_in, dense, bias=bias))
        layers += _hidden(dense, act, batchnorm=False, dropout=dropout, norm=nn.BatchNorm1d)
        fan_in = dense
    layers.append(nn.Linear(fan_in, n_classes, bias=bias))
    return nn.Sequential(*layers)


def _from_factory(spec: Spec, activation, in_shape, n_classes, options) -> nn.Module:
    try:
        factory = load_factory(spec.name)
    except InitSpecError as e:
        head = spec.name.split(":", 1)[0]
        hint = did_you_mean(head, BUILTIN) if str(e).startswith("Cannot import") else ""
        if not hint:
            raise
        raise InitSpecError(f"{e}{hint[:-1]} (a built-in architecture)?") from None
    if spec.args:
        raise InitSpecError(f"Factory spec {spec.name!r}: give its options as KEY=VALUE.")
    offered = {"activation": activation, "in_shape": in_shape, "n_classes": n_classes, **options}
    params = inspect.signature(factory).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if takes_all or k in params}
    kwargs.update(spec.kwargs)
    return call_factory(factory, spec.name, kwargs)
