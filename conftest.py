"""Doctest collection of src/initlab (``--doctest-modules``, see pyproject.toml).

A module that needs an optional library (an extra of initlab) is left out of collection when
that library is not installed, so that `make test` runs without the extras.
"""

from __future__ import annotations

from importlib.util import find_spec

# module (relative to this folder) -> the top-level package it cannot do without
_NEEDS = {
    "src/initlab/integrations/hf.py": "transformers",
    "src/initlab/integrations/lightning.py": "lightning",
    "src/initlab/integrations/tensorboard.py": "tensorboard",
    "src/initlab/experiments/backends/ray.py": "ray",
}

collect_ignore = [path for path, package in _NEEDS.items() if find_spec(package) is None]
