"""The preset registry: a preset is a small function registered under a name.

It takes the run folder and a ``quick`` flag (the short version ``make demo`` runs) and
returns what it produced. The modules that define presets (``presets_classic``,
``presets_training``, ``presets_width``) import this one; :mod:`initlab.experiments.presets`
imports them all, so go through it for the complete list.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initlab.errors import ConfigError
from initlab.registry import Registry


@dataclass(frozen=True)
class Preset:
    """A registered preset: its name, the one-line summary ``initlab run --list`` shows, the
    function that runs it, and whether ``make demo`` runs its quick version."""

    name: str
    summary: str
    run: Callable[..., Any]
    in_demo: bool = True


PRESETS = Registry("preset", error=ConfigError)  # name -> Preset


def preset(name: str, summary: str, in_demo: bool = True):
    """Decorator: register ``fn(out: Path, quick: bool, progress) -> result`` as a preset."""

    def wrap(fn):
        PRESETS.register(name, Preset(name, summary, fn, in_demo))
        return fn

    return wrap


def names(pattern: str | None = None) -> list[str]:
    """The preset names, sorted; a glob ``pattern`` keeps those it matches.

    >>> import initlab.experiments.presets  # registers every preset
    >>> names("lr-*")
    ['lr-schedules']
    """
    return PRESETS.names(pattern)


def presets(pattern: str | None = None) -> list[Preset]:
    """Every registered preset (or those whose names match the glob ``pattern``), sorted by
    name."""
    return [PRESETS[n] for n in PRESETS.names(pattern)]


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a ConfigError with the closest names when there is none."""
    return PRESETS.entry(name)


def run_preset(
    name: str,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    progress=None,
    dataset: str | None = None,
):
    """Run a preset into ``out`` (default ``runs/NAME``, ``runs/NAME-quick`` when quick).

    ``dataset`` replaces the preset's dataset, for presets that take one."""
    p = get_preset(name)
    folder = Path(out) if out else Path("runs") / (f"{name}-quick" if quick else name)
    options = {}
    if dataset is not None:
        if "dataset" not in inspect.signature(p.run).parameters:
            raise ConfigError(f"Preset '{name}' has a fixed dataset; drop --dataset.")
        options["dataset"] = dataset
    return p.run(folder, quick=quick, progress=progress, **options)


@dataclass
class MultiResult:
    """Several comparisons of one preset, plus plain-text lines printed first."""

    run_dir: Path
    parts: list
    lines: list[str]
