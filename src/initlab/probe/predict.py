"""Mean-field prediction of each layer's output variance, with a finite-width band.

For a stack of weight layers (Linear / Conv, weight variance ``sigma_w^2 / fan_in``, bias
variance ``sigma_b^2``) and elementwise activations f, the pre-activation variance follows

    q_1 = sigma_w^2 * E[x^2] + sigma_b^2,    q_{l+1} = sigma_w^2 * E[f(sqrt(q_l) z)^2] + sigma_b^2

with z ~ N(0, 1). The expectation is computed numerically at each layer's own q: a constant
gain is not enough (for tanh it is off by 50-100% at depth). The activation's own variance is
E[f^2] - E[f]^2 at that q.

The recurrence is the average over weight draws. One finite-width network drifts from it: its
log-variance takes a random walk of about ``sqrt(2 / width)`` per layer once the inputs'
representations align, so the band is ``q * exp(+-band * sqrt(sum_l 2 / width_l))``
(band = 2: about 95% of single networks). A measurement outside the band is a real effect,
inside it may be finite-width noise.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn

from initlab.activations import Activation, from_module, resolve
from initlab.initializers.fans import is_hf_conv1d, module_blocks

WEIGHT_TYPES = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)  # fmt: skip
PASS_TYPES = (nn.Flatten, nn.Unflatten, nn.Identity)
_POINTS, _LIMIT = 24001, 12.0  # Simpson's rule on [-12, 12], as initializers.gain does


@dataclass(frozen=True)
class Step:
    """One link of a plain stack: a weight layer or an elementwise activation."""

    name: str
    kind: str  # "weight" | "activation"
    sigma_w2: float = 0.0  # fan_in * Var(W)
    sigma_b2: float = 0.0  # Var(b)
    width: int = 0  # output units averaged per example (out_features / out_channels)
    activation: str | Activation | None = None


@dataclass(frozen=True)
class Prediction:
    """Predicted variance of one layer's output and its finite-width band."""

    name: str
    variance: float
    lower: float
    upper: float


@functools.lru_cache(maxsize=1)
def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and Simpson weights (times the normal density) on [-12, 12], built once."""
    z = torch.linspace(-_LIMIT, _LIMIT, _POINTS, dtype=torch.float64)
    w = torch.ones(_POINTS, dtype=torch.float64)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    density = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return z, w * density * (2 * _LIMIT) / (_POINTS - 1) / 3.0


@functools.lru_cache(maxsize=8192)
def _moments(spec: str, q: float) -> tuple[float, float]:
    z, weights = _grid()
    y = resolve(spec).fn()(math.sqrt(q) * z)
    return float((weights * y).sum()), float((weights * y * y).sum())


def gaussian_moments(activation: str | Activation | None, q: float) -> tuple[float, float]:
    """(E[f(sqrt(q) z)], E[f(sqrt(q) z)^2]) for z ~ N(0, 1), computed numerically (the same
    Simpson rule as ``initlab.initializers.gain.second_moment``, one pass for both).

    >>> [round(m, 4) for m in gaussian_moments("relu", 1.0)]
    [0.3989, 0.5]
    """
    return _moments(resolve(activation).spec, max(float(q), 0.0))


def _activation_variance(act: str | Activation | None, q: float) -> float:
    m1, m2 = gaussian_moments(act, q)
    return max(m2 - m1 * m1, 0.0)


def predict_stack(
    steps: list[Step], input_second_moment: float = 1.0, band: float = 2.0
) -> list[Prediction]:
    """Run the variance recurrence through ``steps``; one prediction per step.

    ``input_second_moment`` is E[x^2] of the stack's input (1 for N(0, 1) inputs).

    >>> steps = [Step("0", "weight", 2.0, width=100), Step("1", "activation", activation="relu")]
    >>> [(p.name, round(p.variance, 4)) for p in predict_stack(steps)]
    [('0', 2.0), ('1', 0.6817)]
    """
    m2 = float(input_second_moment)  # E[y^2] flowing into the next weight layer
    q = m2  # pre-activation variance flowing into the next activation
    walk = 0.0  # accumulated variance of the log-variance random walk
    out: list[Prediction] = []
    for step in steps:
        if step.kind == "weight":
            q = step.sigma_w2 * m2 + step.sigma_b2
            walk += 2.0 / max(step.width, 1)
            spread = math.exp(band * math.sqrt(walk))
            m2 = q
            out.append(Prediction(step.name, q, q / spread, q * spread))
        elif step.kind == "activation":
            spread = math.exp(band * math.sqrt(walk))
            ends = (_activation_variance(step.activation, q / spread),
                    _activation_variance(step.activation, q * spread))  # fmt: skip
            m2 = gaussian_moments(step.activation, q)[1]
            var = _activation_variance(step.activation, q)
            out.append(Prediction(step.name, var, min(ends + (var,)), max(ends + (var,))))
        else:
            raise ValueError(f"unknown step kind {step.kind!r}; use 'weight' or 'activation'")
    return out


def _mean_square(t: torch.Tensor) -> float:
    # a norm is one reduction: no temporary copy of a (possibly huge) weight
    return float(torch.linalg.vector_norm(t.float())) ** 2 / max(t.numel(), 1)


def weight_step(name: str, module: nn.Module) -> Step:
    """A :class:`Step` from a Linear / Conv module's realized weights (zero-mean assumed)."""
    weight = module.weight.detach()
    fan_in = module_blocks(module, "weight", tuple(weight.shape))[0].fan_in
    sigma_w2 = fan_in * _mean_square(weight)
    bias = getattr(module, "bias", None)
    sigma_b2 = _mean_square(bias.detach()) if bias is not None else 0.0
    width = getattr(module, "out_features", None) or getattr(module, "out_channels", None)
    if is_hf_conv1d(module):  # HF's Conv1D stores its weight [in, out]
        width = weight.shape[1]
    return Step(name, "weight", sigma_w2, sigma_b2, int(width or weight.shape[0]))


def chain_steps(calls: list) -> tuple[list[Step], str | None]:
    """Steps from leaf-module calls in forward order, and why the chain stops (or None).

    The chain holds while each leaf's input is the very tensor the previous leaf returned,
    so functional ops, residual adds or reshapes inside ``forward`` end it honestly.
    """
    steps: list[Step] = []
    seen: set[str] = set()
    for i, call in enumerate(calls):
        module, name = call.module, call.name
        label = f"'{name}' ({type(module).__name__})"
        if i > 0 and not call.chained:
            return steps, (
                f"prediction stops at {label}: its input is not the previous module's output "
                "(a functional op, reshape or residual in forward())"
            )
        if name in seen:
            return steps, f"prediction stops at {label}: the module is called twice"
        seen.add(name)
        act = from_module(module)
        if isinstance(module, WEIGHT_TYPES) or is_hf_conv1d(module):
            steps.append(weight_step(name, module))
        elif act is not None and act.name != "identity":
            steps.append(Step(name, "activation", activation=act))
        elif isinstance(module, PASS_TYPES) or act is not None:
            continue
        elif isinstance(module, nn.modules.dropout._DropoutNd) and not module.training:
            continue
        else:
            return steps, (
                f"prediction stops at {label}: only stacks of Linear/Conv and elementwise "
                "activations are predicted"
            )
    return steps, None
