"""Load a user's model factory from a ``package.module:factory`` path.

>>> load_factory("torch.nn:Tanh")
<class 'torch.nn.modules.activation.Tanh'>
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from torch import nn

from initlab.errors import InitSpecError, unknown_name
from initlab.specs import parse_spec

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _import(module_name: str, path: str):
    # A console script's sys.path lacks the current folder; users expect `mymodels:make`
    # in their own folder to import, as `python -m` would. Searched last, so it shadows nothing.
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise InitSpecError(
            f"Cannot import module '{module_name}' for factory '{path}' ({e}); check the name "
            "and that its folder is on PYTHONPATH or is the current folder."
        ) from e
    except Exception as e:  # the user's module itself failed while importing
        first = str(e).splitlines()[0] if str(e) else ""
        raise InitSpecError(
            f"Importing '{module_name}' for factory '{path}' raised {type(e).__name__}: {first}"
        ) from e
    finally:
        if added:
            sys.path.remove(cwd)


def load_factory(path: str) -> Callable[..., Any]:
    """Import ``package.module:factory`` (``factory`` may be dotted, e.g. ``Class.build``)
    and return the callable. Any problem is a one-line :class:`InitSpecError`."""
    if not isinstance(path, str) or path.count(":") != 1:
        raise InitSpecError(
            f"Bad factory path {path!r}: write it as package.module:factory, "
            "e.g. 'mymodels:make_mlp'."
        )
    module_name, attr = (part.strip() for part in path.split(":"))
    if not _MODULE.match(module_name) or not _ATTR.match(attr):
        raise InitSpecError(
            f"Bad factory path {path!r}: module and factory must be Python names, "
            "as in 'package.module:factory'."
        )
    obj: Any = _import(module_name, path)
    where = module_name
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = [n for n in dir(obj) if not n.startswith("_")]
            raise InitSpecError(unknown_name(f"attribute of '{where}'", part, public))
        obj = getattr(obj, part)
        where = f"{where}.{part}"
    if not callable(obj):
        raise InitSpecError(
            f"'{path}' is a {type(obj).__name__}, not a callable that builds a model."
        )
    return obj


def build_model(spec: str) -> Any:
    """Call a factory given as ``package.module:factory[:key=value,...]`` and return a
    ``torch.nn.Module``; options become keyword arguments."""
    module_name, _, rest = spec.partition(":")
    factory, _, options = rest.partition(":")
    kwargs = parse_spec(f"factory:{options}").kwargs if options else {}
    path = f"{module_name}:{factory}"
    return call_factory(load_factory(path), path, kwargs)


def call_factory(factory: Callable[..., Any], name: str, kwargs: dict[str, Any]) -> nn.Module:
    """``factory(**kwargs)``, which must return an ``nn.Module``; one line otherwise."""
    try:
        model = factory(**kwargs)
    except TypeError as e:
        raise InitSpecError(
            f"Model factory {name!r} rejected its arguments {kwargs}: {e}."
        ) from None
    if not isinstance(model, nn.Module):
        raise InitSpecError(
            f"Model factory {name!r} returned {type(model).__name__}, not an nn.Module: "
            "it must return a torch.nn.Module."
        )
    return model
