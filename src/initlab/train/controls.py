"""What happens after the init: LR schedule, regularization and early stopping of a run.

One frozen dataclass, given to the trainer as ``controls=``; only the settings that differ
from the plain run go into ``RunSpec.extra``, so a run without them keeps its old key.

>>> c = TrainControls(schedule="cosine:decay_steps=100", early_stopping="patience=3",
...                   regularization=Regularization(l2=1e-4))
>>> c.to_extra()
{'schedule': 'cosine:decay_steps=100', 'l2': 0.0001, 'early_stopping': 'early_stopping:patience=3'}
>>> TrainControls.from_extra(c.to_extra()) == c.canonical()
True
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from initlab.train import early_stopping, schedules
from initlab.train.precision import canonical_precision
from initlab.train.regularize import Regularization


@dataclass(frozen=True)
class TrainControls:
    """Schedule spec, regularization, an early-stopping spec (None: train every step) and
    the precision (``fp32`` or ``bf16``: :mod:`initlab.train.precision`)."""

    schedule: str = "constant"
    regularization: Regularization = field(default_factory=Regularization)
    early_stopping: str | None = None
    precision: str = "fp32"

    def canonical(self) -> TrainControls:
        """The same controls with every spec in its canonical spelling (checks them too)."""
        stop = self.early_stopping
        return replace(
            self,
            schedule=schedules.get(self.schedule).to_spec(),
            early_stopping=None
            if stop in (None, "", "none")
            else early_stopping.get(stop).to_spec(),
            precision=canonical_precision(self.precision),
        )

    @property
    def per_model_lr(self) -> bool:
        """Does each model need its own LR (reduce-on-plateau)? Then it trains alone."""
        return isinstance(schedules.get(self.schedule), schedules.Plateau)

    def to_extra(self) -> dict[str, Any]:
        """The controls that differ from the defaults, in canonical spelling, as plain data for
        ``RunSpec.extra``."""
        c = self.canonical()
        out: dict[str, Any] = {}
        if c.schedule != "constant":
            out["schedule"] = c.schedule
        out.update(c.regularization.to_extra())
        if c.early_stopping is not None:
            out["early_stopping"] = c.early_stopping
        if c.precision != "fp32":  # fp32 runs keep their keys
            out["precision"] = c.precision
        return out

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> TrainControls:
        """The controls stored in ``RunSpec.extra`` (missing keys: the defaults), canonical."""
        return cls(
            schedule=extra.get("schedule", "constant"),
            regularization=Regularization.from_extra(extra),
            early_stopping=extra.get("early_stopping"),
            precision=extra.get("precision", "fp32"),
        ).canonical()
