"""Learning-rate schedules: the LR used at each optimizer step, as a factor of the base LR.

Schedules that depend only on the step are shared by every model of a stack. Each takes
``warmup_steps``: a linear warmup ``(t + 1) / warmup_steps`` before the schedule itself
starts at its own step 0. Reduce-on-plateau reacts to each model's own metric, so it is a
small state machine (:class:`PlateauState`) kept per model by the trainer.

>>> s = get("cosine:decay_steps=100,alpha=0.1")
>>> round(s.multiplier(0), 3), round(s.multiplier(50), 3), round(s.multiplier(100), 3)
(1.0, 0.55, 0.1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from initlab.errors import InitSpecError
from initlab.registry import Configurable, Registry


class Schedule(Configurable):
    """Base: ``multiplier(step)`` multiplies the base LR at optimizer step ``step`` (from 0)."""

    warmup_steps: int

    def _factor(self, step: int) -> float:
        raise NotImplementedError

    def multiplier(self, step: int) -> float:
        """The factor on the base LR at 0-based ``step``: linear warmup over ``warmup_steps``,
        then the schedule from its start."""
        w = self.warmup_steps
        if step < w:
            return (step + 1) / w
        return self._factor(step - w)

    def lrs(self, base_lr: float, steps: int) -> list[float]:
        """The LR of every step (plateau schedules: without any reduction)."""
        return [base_lr * self.multiplier(t) for t in range(steps)]

    def _check(self, **positive: float) -> None:
        if self.warmup_steps < 0:
            raise InitSpecError(f"Bad warmup_steps={self.warmup_steps} for '{self.name}': >= 0.")
        for key, value in positive.items():
            if not value > 0:
                raise InitSpecError(f"Bad {key}={value} for schedule '{self.name}': must be > 0.")


REGISTRY = Registry("schedule", Schedule)


def get(spec) -> Schedule:
    """A schedule from a name, ``"name:key=value"`` string, dict or instance."""
    return REGISTRY.get(spec)


def names(pattern: str | None = None) -> list[str]:
    """The schedule names, sorted; a glob ``pattern`` keeps those it matches.

    >>> names("cosine*")
    ['cosine', 'cosine_restarts']
    """
    return REGISTRY.names(pattern)


@REGISTRY.register("constant")
@dataclass(frozen=True)
class Constant(Schedule):
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        self._check()

    def _factor(self, step: int) -> float:
        return 1.0


@REGISTRY.register("step")
@dataclass(frozen=True)
class Step(Schedule):
    """``gamma ** (step // step_size)`` (torch's StepLR)."""

    step_size: int = 1000
    gamma: float = 0.1
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        self._check(step_size=self.step_size, gamma=self.gamma)

    def _factor(self, step: int) -> float:
        return self.gamma ** (step // self.step_size)


@dataclass(frozen=True)
class _TimeDecay(Schedule):
    """Keras' decays over ``step / decay_steps`` (floored when ``staircase``)."""

    decay_steps: int = 1000
    decay_rate: float = 0.96
    staircase: bool = False
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        self._check(decay_steps=self.decay_steps, decay_rate=self.decay_rate)

    def _progress(self, step: int) -> float:
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p


@REGISTRY.register("exponential")
@dataclass(frozen=True)
class Exponential(_TimeDecay):
    """``decay_rate ** (step / decay_steps)``, floored exponent when staircase (Keras)."""

    def _factor(self, step: int) -> float:
        return self.decay_rate ** self._progress(step)


@REGISTRY.register("inverse_time")
@dataclass(frozen=True)
class InverseTime(_TimeDecay):
    """``1 / (1 + decay_rate * step / decay_steps)`` (Keras InverseTimeDecay)."""

    decay_rate: float = 0.5

    def _factor(self, step: int) -> float:
        return 1.0 / (1.0 + self.decay_rate * self._progress(step))


@REGISTRY.register("cosine")
@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from 1 to ``alpha`` over ``decay_steps``, then ``alpha`` (Keras)."""

    decay_steps: int = 1000
    alpha: float = 0.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        self._check(decay_steps=self.decay_steps)

    def _factor(self, step: int) -> float:
        t = min(step, self.decay_steps) / self.decay_steps
        return (1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * t)) + self.alpha


@REGISTRY.register("cosine_restarts", aliases=("cosine_warm_restarts", "sgdr"))
@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """SGDR, as Keras' CosineDecayRestarts: periods grow by ``t_mul``, peaks by ``m_mul``."""

    first_decay_steps: int = 1000
    t_mul: float = 2.0
    m_mul: float = 1.0
    alpha: float = 0.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        self._check(first_decay_steps=self.first_decay_steps, t_mul=self.t_mul, m_mul=self.m_mul)

    def _factor(self, step: int) -> float:
        done = step / self.first_decay_steps
        if self.t_mul == 1.0:
            restart = math.floor(done)
            done -= restart
        else:
            restart = math.floor(math.log(1 - done * (1 - self.t_mul)) / math.log(self.t_mul))
            before = (1 - self.t_mul**restart) / (1 - self.t_mul)
            done = (done - before) / self.t_mul**restart
        cosine = 0.5 * self.m_mul**restart * (1 + math.cos(math.pi * done))
        return (1 - self.alpha) * cosine + self.alpha


@REGISTRY.register("plateau", aliases=("reduce_on_plateau",))
@dataclass(frozen=True)
class Plateau(Schedule):
    """Multiply a model's LR by ``factor`` when its monitored metric has not improved by
    more than ``threshold`` (relative, as torch's default) for ``patience`` evaluations."""

    monitor: str = "val_loss"
    mode: str = "min"
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        self._check(factor=self.factor)
        if self.mode not in ("min", "max"):
            raise InitSpecError(f"Bad mode={self.mode!r} for 'plateau'. Allowed: min, max.")

    def _factor(self, step: int) -> float:
        return 1.0

    def start(self, base_lr: float) -> PlateauState:
        """The state before the first evaluation: LR ``base_lr``, no best value yet."""
        best = math.inf if self.mode == "min" else -math.inf
        return PlateauState(lr=base_lr, best=best)

    def update(self, state: PlateauState, value: float) -> PlateauState:
        """One evaluation of the monitored metric; returns the next state (pure)."""
        if self.mode == "min":
            better = value < state.best * (1 - self.threshold)
        else:
            better = value > state.best * (1 + self.threshold)
        if better:
            return PlateauState(state.lr, value, 0, max(state.cooldown - 1, 0))
        if state.cooldown > 0:
            return PlateauState(state.lr, state.best, 0, state.cooldown - 1)
        bad = state.bad + 1
        if bad > self.patience:
            lr = max(state.lr * self.factor, self.min_lr)
            return PlateauState(lr, state.best, 0, self.cooldown)
        return PlateauState(state.lr, state.best, bad, 0)


@dataclass(frozen=True)
class PlateauState:
    """One model's reduce-on-plateau state."""

    lr: float
    best: float
    bad: int = 0  # evaluations without improvement
    cooldown: int = 0
