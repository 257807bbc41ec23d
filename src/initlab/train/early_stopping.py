"""Early stopping as a small pure check (in the spirit of Lightning's EarlyStopping).

The trainer keeps one :class:`StopState` per model and calls :meth:`EarlyStopping.update`
at every evaluation; when ``improved`` is true it checkpoints that model's weights, and when
``stop`` is true it freezes the model (and, with ``restore_best``, restores the best weights
at the end).

>>> rule = EarlyStopping(patience=2)
>>> state = rule.start()
>>> for step, v in enumerate([1.0, 0.8, 0.9, 0.85, 0.95]):
...     state = rule.update(state, v, step)
>>> state.best_step, state.stopped_step
(1, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from initlab.errors import InitSpecError, unknown_name
from initlab.registry import Configurable, Registry

MONITORS = ("val_loss", "val_acc", "train_loss", "test_loss", "test_acc")


@dataclass(frozen=True)
class StopState:
    best: float
    best_step: int | None = None
    wait: int = 0  # evaluations since the last improvement
    stopped_step: int | None = None
    improved: bool = False  # did the last update improve on the best?

    @property
    def stopped(self) -> bool:
        """Has the model stopped?"""
        return self.stopped_step is not None


class _Base(Configurable):
    pass


REGISTRY = Registry("early stopping rule", _Base)


@REGISTRY.register("early_stopping", aliases=("early_stop", "es"))
@dataclass(frozen=True)
class EarlyStopping(_Base):
    """Stop a model when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` evaluations in a row; ``restore_best`` puts the best weights back.

    ``monitor`` is read at every evaluation (``train_loss``: the mean train loss since the
    previous one); ``mode`` ``auto`` means max for accuracies, min otherwise.
    """

    monitor: str = "val_loss"
    mode: str = "auto"
    min_delta: float = 0.0
    patience: int = 5
    restore_best: bool = True

    def __post_init__(self) -> None:
        if self.monitor not in MONITORS:
            raise InitSpecError(unknown_name("monitor", self.monitor, MONITORS))
        if self.mode not in ("auto", "min", "max"):
            raise InitSpecError(
                f"Bad mode={self.mode!r} for early stopping. Allowed: auto, min, max."
            )
        if self.patience < 0 or self.min_delta < 0:
            raise InitSpecError("Early stopping needs patience >= 0 and min_delta >= 0.")

    @property
    def direction(self) -> str:
        """``min`` or ``max``: ``auto`` resolved from the monitored metric."""
        if self.mode != "auto":
            return self.mode
        return "max" if self.monitor.endswith("acc") else "min"

    def start(self) -> StopState:
        """The state before the first evaluation: no best value yet."""
        return StopState(best=math.inf if self.direction == "min" else -math.inf)

    def update(self, state: StopState, value: float, step: int) -> StopState:
        """The next state after observing ``value`` at ``step`` (a stopped state stays)."""
        if state.stopped:
            return StopState(state.best, state.best_step, state.wait, state.stopped_step, False)
        if self.direction == "min":
            better = value < state.best - self.min_delta
        else:
            better = value > state.best + self.min_delta
        if better and math.isfinite(value):
            return StopState(value, step, 0, None, True)
        wait = state.wait + 1
        stopped = step if wait >= self.patience else None
        return StopState(state.best, state.best_step, wait, stopped, False)


def get(spec) -> EarlyStopping:
    """A rule from ``"early_stopping:patience=5"``, the bare options ``"patience=5"``, a dict,
    or an instance."""
    if isinstance(spec, str) and spec.strip() and "=" in spec.split(":", 1)[0]:
        spec = f"early_stopping:{spec.strip()}"
    return REGISTRY.get(spec)
