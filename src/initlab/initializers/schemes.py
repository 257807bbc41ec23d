"""The formula schemes: each a small frozen dataclass that fills a tensor from its fans.

He, Xavier/Glorot and LeCun are variance scaling with a fixed scale and mode (as in Keras):
``std = sqrt(scale / fan)``, and a uniform of the same variance has limit ``sqrt(3) * std``.
Every ``*_normal`` draws from an untruncated normal (PyTorch's convention);
``distribution="truncated_normal"`` switches to a +-2 std truncated normal whose std is divided
by 0.87962566 so that the realized std is the target (Keras's convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from initlab.errors import InitSpecError, did_you_mean
from initlab.initializers import distributions as D
from initlab.initializers.gain import variance_scale
from initlab.initializers.registry import LayerContext, TensorScheme, register

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")
_DIST_ALIASES = {"untruncated_normal": "normal"}


def _check_choice(scheme: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InitSpecError(
            f"Bad {key}={value!r} for initializer '{scheme}'.{did_you_mean(value, allowed)} "
            f"Allowed: {', '.join(allowed)}."
        )


def _check_positive(scheme: str, key: str, value: float, allow_zero: bool = True) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not math.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise InitSpecError(f"Bad {key}={value!r} for initializer '{scheme}': must be {bound}.")


def _fan(ctx: LayerContext, mode: str) -> float:
    if mode == "fan_in":
        return ctx.fan_in
    if mode == "fan_out":
        return ctx.fan_out
    return (ctx.fan_in + ctx.fan_out) / 2.0


def _draw(shape, std: float, distribution: str, generator, device, out=None) -> torch.Tensor:
    if distribution == "normal":
        return D.normal(shape, 0.0, std, generator, device, out)
    if distribution == "uniform":
        limit = math.sqrt(3.0) * std
        return D.uniform(shape, -limit, limit, generator, device, out)
    corrected = std / D.truncated_std(-2.0, 2.0)
    return D.truncated_normal(shape, 0.0, corrected, -2.0, 2.0, generator, device)


class _Scaled(TensorScheme):
    """Shared sampling for the variance-scaling family: std = sqrt(scale / fan)."""

    def _scale_mode_dist(self, ctx: LayerContext) -> tuple[float, str, str]:
        raise NotImplementedError

    def target_std(self, ctx: LayerContext) -> float:
        scale, mode, _ = self._scale_mode_dist(ctx)
        return math.sqrt(scale / max(_fan(ctx, mode), 1.0))

    def gain_for(self, ctx: LayerContext) -> float:
        return math.sqrt(self._scale_mode_dist(ctx)[0])

    def sample(self, shape, ctx, generator, device, out=None):
        _, _, dist = self._scale_mode_dist(ctx)
        return _draw(shape, self.target_std(ctx), dist, generator, device, out)


@register("variance_scaling")
@dataclass(frozen=True)
class VarianceScaling(_Scaled):
    formula = (
        "std = sqrt(scale / fan[mode]); normal, +-2std truncated normal (corrected) or uniform"
    )
    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "normal"

    def __post_init__(self) -> None:
        _check_positive(self.name, "scale", self.scale, allow_zero=False)
        _check_choice(self.name, "mode", self.mode, MODES)
        object.__setattr__(
            self, "distribution", _DIST_ALIASES.get(self.distribution, self.distribution)
        )
        _check_choice(self.name, "distribution", self.distribution, DISTRIBUTIONS)

    def _scale_mode_dist(self, ctx):
        return self.scale, self.mode, self.distribution


@register("he_normal", aliases=("kaiming_normal",))
@dataclass(frozen=True)
class HeNormal(_Scaled):
    formula = "N(0, 2 / ((1 + a^2) fan)), a = negative_slope"
    mode: str = "fan_in"
    negative_slope: float = 0.0
    distribution: str = "normal"

    def __post_init__(self) -> None:
        _check_choice(self.name, "mode", self.mode, MODES)
        _check_choice(self.name, "distribution", self.distribution, DISTRIBUTIONS)

    def _scale_mode_dist(self, ctx):
        return 2.0 / (1.0 + self.negative_slope**2), self.mode, self.distribution


@register("he_uniform", aliases=("kaiming_uniform",))
@dataclass(frozen=True)
class HeUniform(_Scaled):
    formula = "U(+-sqrt(6 / ((1 + a^2) fan))), a = negative_slope"
    mode: str = "fan_in"
    negative_slope: float = 0.0

    def __post_init__(self) -> None:
        _check_choice(self.name, "mode", self.mode, MODES)

    def _scale_mode_dist(self, ctx):
        return 2.0 / (1.0 + self.negative_slope**2), self.mode, "uniform"


@register("xavier_normal", aliases=("glorot_normal",))
@dataclass(frozen=True)
class XavierNormal(_Scaled):
    formula = "N(0, gain^2 * 2 / (fan_in + fan_out))"
    gain: float = 1.0
    distribution: str = "normal"

    def __post_init__(self) -> None:
        _check_choice(self.name, "distribution", self.distribution, DISTRIBUTIONS)

    def _scale_mode_dist(self, ctx):
        return self.gain**2, "fan_avg", self.distribution


@register("xavier_uniform", aliases=("glorot_uniform",))
@dataclass(frozen=True)
class XavierUniform(_Scaled):
    formula = "U(+-gain * sqrt(6 / (fan_in + fan_out)))"
    gain: float = 1.0

    def _scale_mode_dist(self, ctx):
        return self.gain**2, "fan_avg", "uniform"


@register("lecun_normal")
@dataclass(frozen=True)
class LecunNormal(_Scaled):
    formula = "N(0, 1 / fan_in)  (many course notes call this 'Xavier')"
    distribution: str = "normal"

    def __post_init__(self) -> None:
        _check_choice(self.name, "distribution", self.distribution, DISTRIBUTIONS)

    def _scale_mode_dist(self, ctx):
        return 1.0, "fan_in", self.distribution


@register("lecun_uniform")
@dataclass(frozen=True)
class LecunUniform(_Scaled):
    formula = "U(+-sqrt(3 / fan_in))"

    def _scale_mode_dist(self, ctx):
        return 1.0, "fan_in", "uniform"


@register("auto")
@dataclass(frozen=True)
class Auto(_Scaled):
    formula = "N(0, 1 / (E[f(z)^2] fan)), f = the activation that follows the layer"
    mode: str = "fan_in"
    distribution: str = "normal"

    def __post_init__(self) -> None:
        _check_choice(self.name, "mode", self.mode, MODES)
        _check_choice(self.name, "distribution", self.distribution, DISTRIBUTIONS)

    def _scale_mode_dist(self, ctx):
        return variance_scale(ctx.activation), self.mode, self.distribution
