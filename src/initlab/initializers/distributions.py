"""Draws from the distributions the schemes use, always from an explicit generator.

Draws happen in float32 (float64 for the inverse-CDF of the truncated normal) on the
generator's device; callers cast to the parameter's dtype.
"""

from __future__ import annotations

import math

import torch

SQRT2 = math.sqrt(2.0)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / SQRT2))


def truncated_std(a: float, b: float) -> float:
    """Std of a standard normal truncated to [a, b] (a, b in units of std).

    For a = -2, b = 2 this is 0.87962566103423978, the constant Keras and JAX divide by.
    """
    z = _cdf(b) - _cdf(a)
    if z <= 0:
        raise ValueError(f"truncation interval [{a}, {b}] has no probability mass")
    pa = _phi(a) if math.isfinite(a) else 0.0
    pb = _phi(b) if math.isfinite(b) else 0.0
    ta = a * pa if math.isfinite(a) else 0.0
    tb = b * pb if math.isfinite(b) else 0.0
    var = 1.0 + (ta - tb) / z - ((pa - pb) / z) ** 2
    return math.sqrt(var)


def truncated_mean(a: float, b: float) -> float:
    """Mean of a standard normal truncated to [a, b]."""
    z = _cdf(b) - _cdf(a)
    pa = _phi(a) if math.isfinite(a) else 0.0
    pb = _phi(b) if math.isfinite(b) else 0.0
    return (pa - pb) / z


def _target(shape, device, out: torch.Tensor | None) -> torch.Tensor:
    """Draw into ``out`` when given (a float32 tensor of ``shape``), else a new tensor."""
    if out is not None:
        return out
    return torch.empty(shape, dtype=torch.float32, device=device)


def normal(shape, mean: float, std: float, generator: torch.Generator, device, out=None):
    """N(mean, std^2) float32 draws of ``shape`` from ``generator`` (into ``out`` when given)."""
    return _target(shape, device, out).normal_(mean, std, generator=generator)


def uniform(shape, low: float, high: float, generator: torch.Generator, device, out=None):
    """U(low, high) float32 draws of ``shape`` from ``generator`` (into ``out`` when given)."""
    return _target(shape, device, out).uniform_(low, high, generator=generator)


def truncated_normal(
    shape, mean: float, std: float, a: float, b: float, generator: torch.Generator, device
) -> torch.Tensor:
    """N(mean, std^2) truncated to [mean + a*std, mean + b*std], by the inverse CDF.

    The uniform draw is float32 (the generator's native draw) and the inverse CDF is computed
    in float64, so the tails are exact to float32 resolution.
    """
    lo, hi = _cdf(a), _cdf(b)
    u = uniform(shape, 0.0, 1.0, generator, device).double()
    p = lo + (hi - lo) * u
    # clamp away from 0/1 so erfinv stays finite at the interval's ends
    eps = torch.finfo(torch.float64).eps
    p = p.clamp(min(lo + eps, hi), max(hi - eps, lo))
    z = SQRT2 * torch.special.erfinv(2.0 * p - 1.0)
    return (mean + std * z.clamp(a, b)).float()
