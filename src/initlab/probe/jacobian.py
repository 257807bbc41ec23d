"""The input-output Jacobian spectrum of a model at init (dynamical isometry).

For a few single inputs x, J = d model(x) / dx is flattened to [outputs, inputs] and its
squared singular values are measured:

* ``exact`` (small nets, both sides at most ``max_exact``): J by ``torch.autograd.functional.jacobian`` on a
  float64 copy of the model, then ``torch.linalg.svdvals``;
* ``randomized`` (big nets): with r = min(outputs, inputs) and k Gaussian probe vectors v,
  Hutchinson's estimates ``tr(J^T J) = E|J v|^2`` and ``tr((J^T J)^2) = E|J^T J v|^2`` (one
  ``jvp`` and one ``vjp`` per probe) give the mean ``tr / r`` and the variance
  ``tr2 / r - mean^2`` of the squared singular values, and 30 steps of power iteration on
  J^T J give the largest; the smallest (and so the condition number) is not estimated.

The mean-field prediction of the mean is the product over layers of the mean squared
singular value of each layer's Jacobian: sigma_w^2 for a weight layer, E[f'(u)^2] with u ~
N(0, q_l) for an activation, q_l from the length recurrence started at the inputs' second
moment (at q = q* every weight + activation pair contributes chi_1, hence chi_1^L), times
outputs / r (the trace spreads over r values).

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False))
>>> _ = [nn.init.orthogonal_(m.weight, generator=torch.Generator().manual_seed(0)) for m in net]
>>> s = jacobian_spectrum(net, torch.randn(2, 8, generator=torch.Generator().manual_seed(1)))
>>> s.method, round(s.mean, 4), round(s.max, 4), round(s.min, 4), round(s.predicted_mean, 4)
('exact', 1.0, 1.0, 1.0, 1.0)
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from initlab.activations import from_module
from initlab.errors import ConfigError
from initlab.probe.predict import PASS_TYPES, WEIGHT_TYPES, weight_step
from initlab.theory.gaussian import expect

METHODS = ("auto", "exact", "randomized")


@dataclass
class JacobianSpectrum:
    """Squared singular values of the input-output Jacobian over a few inputs."""

    method: str  # exact | randomized
    inputs: int
    shape: list[int]  # [outputs, inputs] of J for one example
    mean: float
    variance: float
    max: float
    min: float | None = None  # exact only
    condition: float | None = None  # max / min (squared singular values), exact only
    predicted_mean: float | None = None  # mean-field: chi_1^L (None when not a plain stack)
    values: list[float] = field(default_factory=list)  # exact: every value, all inputs
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain JSON-able data."""
        return asdict(self)


def _single(model: nn.Module, x: torch.Tensor):
    def f(v: torch.Tensor) -> torch.Tensor:
        return model(v.unsqueeze(0)).reshape(-1)

    return f


def _exact(model: nn.Module, xs: torch.Tensor) -> list[torch.Tensor]:
    m64 = copy.deepcopy(model).double()
    out = []
    for x in xs.double():
        f = _single(m64, x)
        # one vjp per output row; vectorized (vmap) pays off only for many rows
        jac = torch.autograd.functional.jacobian(f, x, vectorize=f(x).numel() > 64)
        jac = jac.reshape(jac.shape[0], -1).detach()
        out.append(torch.linalg.svdvals(jac) ** 2)
    return out


def _randomized(model, xs, probes: int, generator) -> tuple[float, float, float]:
    tr = tr2 = top = 0.0
    for x in xs:
        f = _single(model, x)
        _, vjp = torch.func.vjp(f, x)
        for _ in range(probes):
            v = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            jv = torch.func.jvp(f, (x,), (v,))[1]
            (jtjv,) = vjp(jv)
            tr += float(jv.detach().pow(2).sum()) / probes
            tr2 += float(jtjv.detach().pow(2).sum()) / probes
        v = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        lam = 0.0
        for _ in range(30):
            v = v / v.norm()
            (w,) = vjp(torch.func.jvp(f, (x,), (v,))[1])
            w = w.detach()
            lam = float((w * v).sum())
            v = w
        top = max(top, lam)
    n = len(xs)
    return tr / n, tr2 / n, top


def predicted_mean(model: nn.Module, second_moment: float) -> float | None:
    """The mean-field mean squared singular value of J (None unless a plain stack of weight
    layers and elementwise activations)."""
    m2, q, factor = float(second_moment), float(second_moment), 1.0
    for module in model.modules():
        if module is model and isinstance(model, nn.Sequential):
            continue
        if isinstance(module, WEIGHT_TYPES):
            step = weight_step("", module)
            q = step.sigma_w2 * m2 + step.sigma_b2
            m2 = q
            factor *= step.sigma_w2
        elif isinstance(module, (nn.Sequential, *PASS_TYPES)):
            continue
        elif (act := from_module(module)) is not None:
            factor *= float(expect(act, q, "df", 2))
            m2 = float(expect(act, q, power=2))
        else:
            return None
    return factor


def jacobian_spectrum(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    n_inputs: int = 4,
    method: str = "auto",
    max_exact: int = 2048,
    probes: int = 16,
    generator: torch.Generator | None = None,
) -> JacobianSpectrum:
    """Squared singular values of J at the first ``n_inputs`` rows of ``inputs`` (see the
    module docstring for ``exact`` and ``randomized``; ``auto``: exact when both sides of J
    are at most ``max_exact``). The model's parameters are not changed."""
    if method not in METHODS:
        raise ConfigError(f"Bad jacobian method {method!r}. Allowed: {', '.join(METHODS)}.")
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point() or inputs.dim() < 2:
        raise ConfigError(
            "The Jacobian spectrum needs float inputs of shape [batch, ...] (one row per "
            "example); token-id inputs have no input-output Jacobian."
        )
    if n_inputs < 1:
        raise ConfigError(f"n_inputs must be a positive integer, got {n_inputs}.")
    xs = inputs[:n_inputs].detach()
    with torch.no_grad():
        n_out = int(model(xs[:1]).numel())
    n_in = int(xs[0].numel())
    r = min(n_in, n_out)
    exact = method == "exact" or (method == "auto" and max(n_in, n_out) <= max_exact)
    pred = predicted_mean(model, float(inputs.double().pow(2).mean()))
    pred = None if pred is None else pred * n_out / r
    if exact:
        vals = torch.cat(_exact(model, xs)).detach()
        lo = float(vals.min())
        return JacobianSpectrum(
            "exact", len(xs), [n_out, n_in], float(vals.mean()), float(vals.var(unbiased=False)),
            float(vals.max()), lo, float(vals.max()) / lo if lo > 0 else math.inf, pred,
            [float(v) for v in vals],
        )  # fmt: skip
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    tr, tr2, top = _randomized(model, xs.to(next(model.parameters()).dtype), probes, gen)
    mean = tr / r
    note = f"randomized: {probes} Hutchinson probes per input, 30 power-iteration steps"
    return JacobianSpectrum(
        "randomized", len(xs), [n_out, n_in], mean, max(tr2 / r - mean * mean, 0.0), top,
        predicted_mean=pred, notes=[note],
    )  # fmt: skip
