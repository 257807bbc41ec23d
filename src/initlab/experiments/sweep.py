"""Sweeps: a grid of settings read from TOML, planned into stacked-trainer jobs.

A sweep file names the fixed settings (any :class:`CompareConfig` key) and the axes to vary::

    name = "sweep-small"
    [fixed]
    dataset = "digits"
    arch = "mlp:32x{depth}"     # {depth} is filled from the depth axis
    seeds = 3
    steps = 300
    [axes]
    inits = ["lecun_normal", "xavier_normal", "he_normal"]
    activation = ["relu", "tanh"]
    depth = [1, 3]
    lr = { min = 0.02, max = 0.2, num = 2 }   # log-spaced; scale = "linear" for even steps

The planner makes one job per point of the non-init axes (activation x depth x lr above: 8
jobs); the inits x seeds of a job train together in one stack (the fast path).

>>> sweep = parse_sweep({"fixed": {"dataset": "digits", "arch": "mlp:8x{depth}", "seeds": 2},
...                      "axes": {"inits": ["he_normal", "lecun_normal"], "depth": [1, 2],
...                               "lr": {"min": 0.01, "max": 0.1, "num": 2}}})
>>> [(job.cell, len(job.keys)) for job in sweep.plan()]  # doctest: +NORMALIZE_WHITESPACE
[({'depth': 1, 'lr': 0.01}, 4), ({'depth': 1, 'lr': 0.1}, 4),
 ({'depth': 2, 'lr': 0.01}, 4), ({'depth': 2, 'lr': 0.1}, 4)]
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initlab.errors import ConfigError, did_you_mean
from initlab.experiments.compare import run_specs
from initlab.experiments.config import CompareConfig, make_config, read_toml
from initlab.runspec import RunSpec

TOP_KEYS = ("name", "fixed", "axes")
RANGE_KEYS = ("min", "max", "num", "scale")
DEPTH = "depth"  # the one axis that is not a CompareConfig field: it fills arch's {depth}
# Keys a sweep sets itself: the name is top-level, threads come from --threads-per-job.
NOT_FIXED = {"name": "set name at the top of the file", "threads": "use --threads-per-job"}
NOT_AXES = {
    "seeds": "seeds are stacked inside each job: set fixed.seeds = N",
    "name": "set name at the top of the file",
    "threads": "use --threads-per-job",
}


@dataclass(frozen=True)
class Job:
    """One stacked training: a CompareConfig (as plain data) and the run keys it produces."""

    cell: dict[str, Any]  # the value of every non-init axis, in file order
    config: dict[str, Any]  # CompareConfig.model_dump(): picklable for any backend
    keys: tuple[str, ...]  # RunSpec keys of its inits x seeds, in run_specs order

    @property
    def id(self) -> str:
        """12 hex digits of the hash of the job's run keys: its id in the sweep plan."""
        return hashlib.sha256("".join(self.keys).encode()).hexdigest()[:12]

    def label(self) -> str:
        """The job's cell as ``key=value`` words (``single job`` for a sweep without axes)."""
        return " ".join(f"{k}={v}" for k, v in self.cell.items()) or "single job"

    def compare_config(self) -> CompareConfig:
        """The CompareConfig the job trains, rebuilt from its plain data."""
        return CompareConfig(**self.config)

    def compare_config_runs(self) -> list[RunSpec]:
        """The RunConfigs of its inits x seeds (their keys are ``self.keys``)."""
        return run_specs(self.compare_config())


@dataclass
class Sweep:
    """A validated sweep file: fixed settings, axes (values in order) and the inits."""

    name: str | None
    fixed: dict[str, Any]
    axes: dict[str, list[Any]]  # non-init axes only
    inits: list[str]
    source: str = "sweep"

    def plan(self, threads: int = 1) -> list[Job]:
        """One :class:`Job` per grid point of the non-init axes, the last axis fastest."""
        jobs = []
        for values in itertools.product(*self.axes.values()):
            cell = dict(zip(self.axes, values))
            config = self._config(cell, threads)
            cell = {k: (v if k == DEPTH else getattr(config, k)) for k, v in cell.items()}
            keys = tuple(rc.key() for rc in run_specs(config))
            jobs.append(Job(cell=cell, config=config.model_dump(), keys=keys))
        return jobs

    def _config(self, cell: dict[str, Any], threads: int = 1) -> CompareConfig:
        values = {**self.fixed, "inits": self.inits, "threads": threads, "name": self.name}
        for key, value in cell.items():
            if key == DEPTH:
                values["arch"] = str(self.fixed["arch"]).replace("{depth}", str(value))
            else:
                values[key] = value
        return make_config(CompareConfig, **values)

    def resolved(self) -> dict[str, Any]:
        """Plain data for the store's ``config`` meta value."""
        return {"name": self.name, "fixed": self.fixed, "axes": self.axes, "inits": self.inits}

    def runs(self) -> int:
        """How many runs the sweep holds: grid points x inits x seeds."""
        return math.prod(len(v) for v in self.axes.values()) * len(self.inits) * self._seeds()

    def _seeds(self) -> int:
        return int(self.fixed.get("seeds", CompareConfig.model_fields["seeds"].default))


def load_sweep(path: str | Path, overrides: dict[str, Any] | None = None) -> Sweep:
    """Read and validate a sweep file; every problem is one :class:`ConfigError` line.
    ``overrides`` replace fixed settings of the file (the CLI's ``--device``).

    >>> load_sweep("examples/sweep-small.toml").runs()  # doctest: +SKIP
    72
    """
    path = Path(path)
    data = read_toml(path, "Sweep file")
    if overrides:
        data = {**data, "fixed": {**data.get("fixed", {}), **overrides}}
    try:
        return parse_sweep(data, source=str(path))
    except ConfigError as e:
        raise ConfigError(f"{e} (in '{path}')") from None


def parse_sweep(data: dict[str, Any], source: str = "sweep") -> Sweep:
    """Validate the parsed TOML of a sweep file (see the module docstring for the format)."""
    _known(data, TOP_KEYS, "key", "")
    fixed, axes = data.get("fixed", {}), dict(data.get("axes", {}))
    for section, value in (("fixed", fixed), ("axes", axes)):
        if not isinstance(value, dict):
            raise ConfigError(f"'{section}' must be a table ([{section}]), got {value!r}.")
    fields = [k for k in CompareConfig.model_fields if k != "name"]
    for key in fixed:
        if key in NOT_FIXED:
            raise ConfigError(f"Key 'fixed.{key}' is not allowed: {NOT_FIXED[key]}.")
        _known({key: 0}, fields, "key", "fixed.")
    for key in axes:
        if key in NOT_AXES:
            raise ConfigError(f"Axis 'axes.{key}' is not allowed: {NOT_AXES[key]}.")
        _known({key: 0}, [*fields, DEPTH], "axis", "axes.")
        if key in fixed:
            raise ConfigError(f"'{key}' is both in [fixed] and in [axes]; keep one.")
    inits = axes.pop("inits", fixed.get("inits"))
    fixed = {k: v for k, v in fixed.items() if k != "inits"}
    if inits is None:
        inits = CompareConfig.model_fields["inits"].default_factory()
    if DEPTH in axes and "{depth}" not in str(fixed.get("arch", "")):
        raise ConfigError(
            "Axis 'axes.depth' needs fixed.arch with a {depth} placeholder, "
            'e.g. arch = "mlp:32x{depth}".'
        )
    values = {key: _axis_values(key, value) for key, value in axes.items()}
    name = data.get("name")
    sweep = Sweep(name=None if name is None else str(name), fixed=fixed, axes=values,
                  inits=[], source=source)  # fmt: skip
    # Validate fixed settings and inits once, then every value of every axis on its own.
    base = {k: v[0] for k, v in values.items()}
    sweep.inits = make_config(CompareConfig, **{**fixed, "inits": inits}).inits
    sweep._config(base)
    for key, vals in values.items():
        for v in vals:
            try:
                sweep._config({**base, key: v})
            except ConfigError as e:
                raise ConfigError(f"{e} (axis 'axes.{key}')") from None
    return sweep


def _known(data: dict[str, Any], allowed, what: str, prefix: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"Unknown {what} '{prefix}{key}'.{did_you_mean(key, allowed)} "
                f"Allowed: {', '.join(allowed)}."
            )


def _axis_values(key: str, value: Any) -> list[Any]:
    """A list as given, or a range table ``{min, max, num, scale}`` (log-spaced by default)."""
    if isinstance(value, dict):
        values = log_range(key, **_range_args(key, value))
    elif isinstance(value, list):
        values = value
    else:
        values = [value]
    if not values:
        raise ConfigError(f"Axis 'axes.{key}' has no values; give a list such as [1, 2].")
    dupes = [v for i, v in enumerate(values) if v in values[:i]]
    if dupes:
        raise ConfigError(f"Axis 'axes.{key}' lists {dupes[0]!r} twice.")
    return values


def _range_args(key: str, table: dict[str, Any]) -> dict[str, Any]:
    _known(table, RANGE_KEYS, "range key", f"axes.{key}.")
    missing = [k for k in ("min", "max", "num") if k not in table]
    if missing:
        raise ConfigError(
            f"Range 'axes.{key}' needs min, max and num (missing {', '.join(missing)}), "
            f"e.g. {key} = {{ min = 0.01, max = 0.1, num = 3 }}."
        )
    return table


def log_range(key: str, min: Any, max: Any, num: Any, scale: str = "log") -> list[float]:
    """``num`` values from ``min`` to ``max`` inclusive, log-spaced (or ``scale="linear"``).

    Values are rounded to 12 significant digits, so 0.01..1 gives exactly 0.1 in the middle.

    >>> log_range("lr", 0.01, 1.0, 3)
    [0.01, 0.1, 1.0]
    >>> log_range("dropout", 0.0, 0.5, 3, scale="linear")
    [0.0, 0.25, 0.5]
    """
    where = f"range 'axes.{key}'"
    if scale not in ("log", "linear"):
        raise ConfigError(f"Bad scale {scale!r} in {where}: use 'log' or 'linear'.")
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        raise ConfigError(f"Bad num {num!r} in {where}: give a whole number >= 1.")
    try:
        lo, hi = float(min), float(max)
    except (TypeError, ValueError):
        raise ConfigError(f"Bad min/max ({min!r}, {max!r}) in {where}: give numbers.") from None
    if scale == "log" and not (0 < lo and 0 < hi):
        raise ConfigError(f"A log-spaced {where} needs min and max > 0 (got {lo}, {hi}).")
    if num == 1:
        return [lo]
    out = []
    for i in range(num):
        t = i / (num - 1)
        v = lo * (hi / lo) ** t if scale == "log" else lo + (hi - lo) * t
        out.append(float(f"{v:.12g}"))
    return out
