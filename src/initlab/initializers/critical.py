"""Edge-of-chaos schemes: ``critical`` (mean-field criticality) and ``delta_orthogonal``.

``critical`` puts each layer on the critical line chi_1 = 1 of the activation that follows it
(found by tracing, as ``auto`` finds it; a layer with no activation after it is linear:
sigma_w^2 = 1): weights N(0, sigma_w^2 / fan_in) (or uniform / truncated normal of that
variance, or ``distribution=orthogonal``: ``sqrt(sigma_w^2)`` times an orthogonal matrix, a
delta-orthogonal kernel for convolutions) and biases N(0, sigma_b^2). Give ``sigma_b2`` (the
bias variance; sigma_w^2 follows) or ``q_star`` (the length fixed point; both variances
follow). Biases are the scheme's own: with ``init_(model, "critical")`` they are drawn from
N(0, sigma_b^2); where a caller passes a bias spec (``CompareConfig.bias``), pass the same
``critical`` spec there.

``delta_orthogonal`` (Xiao et al. 2018): for a convolution, an orthogonal matrix
[out, in] per group at the kernel centre and zeros elsewhere, times ``gain``; a 2-d weight
gets a plain orthogonal matrix. At gain 1 and no bias a stack of such convolutions with
in = out channels is an isometry (the identity map up to a rotation of channels).

>>> import torch
>>> from initlab.initializers.registry import LayerContext, get
>>> ctx = LayerContext(fan_in=400, fan_out=400, shape=(400, 400), activation="tanh")
>>> round(get("critical:sigma_b2=0.05").sigma_w2(ctx), 3)
1.761
>>> w = get("delta_orthogonal").sample((8, 8, 3, 3), ctx, torch.Generator().manual_seed(0), "cpu")
>>> float(w[:, :, 0, 0].abs().max()), bool(torch.allclose(w[:, :, 1, 1] @ w[:, :, 1, 1].T, torch.eye(8), atol=1e-5))
(0.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from initlab.errors import ConfigError, InitSpecError
from initlab.initializers import distributions as D
from initlab.initializers.registry import LayerContext, TensorScheme, register
from initlab.initializers.schemes import MODES, Auto, _check_choice, _check_positive, _draw, _fan
from initlab.theory.critical import critical_point

CRITICAL_DISTRIBUTIONS = ("normal", "truncated_normal", "uniform", "orthogonal")


def _orthogonal(rows: int, cols: int, generator, device) -> torch.Tensor:
    """A [rows, cols] matrix with orthonormal rows (rows <= cols) or columns, sign-fixed QR."""
    flat = D.normal((max(rows, cols), min(rows, cols)), 0.0, 1.0, generator, device)
    q, r = torch.linalg.qr(flat)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    return q.T.contiguous() if rows < cols else q


def delta_orthogonal(shape, groups: int, gain: float, generator, device) -> torch.Tensor:
    """Orthogonal [out/groups, in/groups] blocks at the kernel centre, zeros elsewhere."""
    out = torch.zeros(shape, dtype=torch.float32, device=device)
    if len(shape) == 2:
        return gain * _orthogonal(shape[0], shape[1], generator, device)
    if shape[0] % groups:
        groups = 1
    per = shape[0] // groups
    centre = tuple(k // 2 for k in shape[2:])
    for g in range(groups):
        block = _orthogonal(per, shape[1], generator, device)
        out[(slice(g * per, (g + 1) * per), slice(None), *centre)] = gain * block
    return out


def _groups(ctx: LayerContext) -> int:
    return int(getattr(ctx.module, "groups", 1) or 1) if ctx.module is not None else 1


def _is_bias(ctx: LayerContext, shape) -> bool:
    return len(shape) <= 1


@register("critical", aliases=("edge_of_chaos",))
@dataclass(frozen=True)
class Critical(Auto):
    """Weights and biases on the critical line chi_1 = 1 of the activation after each layer."""

    formula = "N(0, sigma_w^2(f, sigma_b^2) / fan_in), bias N(0, sigma_b^2): chi_1 = 1"
    owns_bias = True
    sigma_b2: float = 0.0
    q_star: float | None = None

    def __post_init__(self) -> None:
        _check_choice(self.name, "mode", self.mode, MODES)
        _check_choice(self.name, "distribution", self.distribution, CRITICAL_DISTRIBUTIONS)
        _check_positive(self.name, "sigma_b2", self.sigma_b2)
        if self.q_star is not None:
            _check_positive(self.name, "q_star", self.q_star, allow_zero=False)
            if self.sigma_b2:
                raise InitSpecError(
                    "Give 'critical' sigma_b2 or q_star, not both: on the critical line one "
                    "fixes the other (e.g. critical:q_star=0.01)."
                )

    def point(self, ctx: LayerContext):
        """The :class:`~initlab.theory.critical.CriticalPoint` of the layer's activation."""
        try:
            if self.q_star is not None:
                return critical_point(ctx.activation, q_star=self.q_star)
            return critical_point(ctx.activation, sigma_b2=self.sigma_b2)
        except ConfigError as e:
            raise InitSpecError(f"'critical' at layer '{ctx.param_name}': {e}") from None

    def sigma_w2(self, ctx: LayerContext) -> float:
        """The critical weight variance (times fan_in) for this layer."""
        return self.point(ctx).sigma_w2

    def _scale_mode_dist(self, ctx):
        return self.sigma_w2(ctx), self.mode, self.distribution

    def target_std(self, ctx: LayerContext) -> float:
        """sqrt(sigma_b^2) for a bias; sqrt(sigma_w^2 / fan) for a weight (orthogonal: the
        entry std of sqrt(sigma_w^2) times unit-norm rows or columns)."""
        if _is_bias(ctx, ctx.shape):
            return math.sqrt(self.point(ctx).sigma_b2)
        if self.distribution == "orthogonal":
            rows, cols = ctx.shape[0], math.prod(ctx.shape[1:])
            centre = math.prod(ctx.shape[2:]) if len(ctx.shape) > 2 else 1
            return math.sqrt(self.sigma_w2(ctx) / max(rows * centre, cols))
        return super().target_std(ctx)

    def sample(self, shape, ctx, generator, device, out=None):
        """Bias: N(0, sigma_b^2); weight: the critical variance in ``distribution``."""
        if _is_bias(ctx, shape):
            return D.normal(shape, 0.0, math.sqrt(self.point(ctx).sigma_b2), generator, device, out)
        if self.distribution == "orthogonal":
            gain = math.sqrt(self.sigma_w2(ctx))
            return delta_orthogonal(tuple(shape), _groups(ctx), gain, generator, device)
        std = math.sqrt(self.sigma_w2(ctx) / max(_fan(ctx, self.mode), 1.0))
        return _draw(shape, std, self.distribution, generator, device, out)


@register("delta_orthogonal", aliases=("delta_orth",))
@dataclass(frozen=True)
class DeltaOrthogonal(TensorScheme):
    """Xiao et al. (2018): orthogonal at the kernel centre, zeros elsewhere, per group."""

    formula = "gain * Q at the kernel centre (Q orthogonal [out, in] per group), 0 elsewhere"
    gain: float = 1.0

    def __post_init__(self) -> None:
        _check_positive(self.name, "gain", self.gain, allow_zero=False)

    def target_std(self, ctx):
        """gain / sqrt(max(out * k, in * k)) over the whole kernel (k: kernel elements)."""
        if len(ctx.shape) < 2:
            return None
        k = math.prod(ctx.shape[2:]) if len(ctx.shape) > 2 else 1
        return self.gain / math.sqrt(max(ctx.shape[0] * k, ctx.shape[1] * k))

    def sample(self, shape, ctx, generator, device, out=None):
        """The delta-orthogonal kernel (plain orthogonal for a 2-d weight)."""
        if len(shape) < 2 or len(shape) > 5:
            raise InitSpecError(
                f"'delta_orthogonal' needs a 2-d (Linear) or 3..5-d (Conv) weight, got shape "
                f"{tuple(shape)}."
            )
        return delta_orthogonal(tuple(shape), _groups(ctx), self.gain, generator, device)
