"""Plain records of runs: dataclasses of floats, ints, strings and lists.

These never import torch, so a report can be rebuilt from a results store anywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from initlab.runspec import RunSpec


@dataclass
class MetricSeries:
    """One metric over training: parallel lists of steps and values."""

    name: str
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def append(self, step: int, value: float) -> None:
        """Add ``value`` at ``step``."""
        self.steps.append(int(step))
        self.values.append(float(value))


@dataclass
class RunRecord:
    """Everything one finished (or diverged) run produced.

    ``metrics`` maps names to series: ``train_loss`` (every step), ``lr`` (every step),
    ``val_loss``, ``val_acc``, ``test_loss``, ``test_acc`` (every ``eval_every`` steps and at
    the end). The scalar fields are the headline numbers of the run.
    """

    config: RunSpec
    status: str = "finished"  # "finished" | "stopped" (early) | "diverged" | "failed"
    final_train_loss: float = float("nan")  # mean train loss of the last 100 steps
    test_accuracy: float = float("nan")
    test_loss: float = float("nan")
    steps_to_target: int | None = None  # first step whose train loss <= target_loss
    diverged_step: int | None = None
    val_loss: float = float("nan")  # of the weights the run ends with (restored best or last)
    val_accuracy: float = float("nan")
    stopped_step: int | None = None  # early stopping: the step it stopped at
    best_step: int | None = None  # early stopping: the step of its best evaluation
    wall_time: float = 0.0
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    error: str | None = None

    @property
    def key(self) -> str:
        """The key of the run's config."""
        return self.config.key()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data, with the key."""
        d = asdict(self)
        d["key"] = self.key
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        """Rebuild a record from :meth:`to_dict` data (the key is recomputed from the config)."""
        d = dict(d)
        d.pop("key", None)
        d["config"] = RunSpec.from_dict(d["config"])
        d["metrics"] = {k: MetricSeries(**v) for k, v in d.get("metrics", {}).items()}
        return cls(**d)


@dataclass
class Stat:
    """Mean, std and 95% confidence half-width (t-distribution) over seeds."""

    mean: float
    std: float
    ci95: float
    values: list[float]


@dataclass
class InitSummary:
    """One row of a comparison: an init aggregated over its seeds."""

    init: str
    seeds: int
    final_train_loss: Stat
    test_accuracy: Stat
    steps_to_target: Stat | None
    diverged: int
    val_loss: Stat | None = None  # of the weights each run ends with
    stopped: int = 0  # runs ended by early stopping

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return asdict(self)
