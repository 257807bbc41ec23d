"""Gaussian expectations of an activation and its derivative, by quadrature.

One-dimensional ``E[g(sqrt(q) z)]`` for z ~ N(0, 1) uses the trapezoid rule on
:data:`POINTS` evenly spaced nodes of [-10, 10] (an even count: symmetric, no node at 0) with
the normal density as weights, normalised to sum 1. For smooth integrands it is spectrally
accurate (error far below 1e-10 for tanh, GELU, SiLU, Mish, also at q ~ 1e3 where tanh' is
narrow); at kinks (ReLU, hardtanh) the error is O(h^2), about 1e-5; ReLU's half-Gaussian
moments come out exact by symmetry, so the ReLU critical line sigma_w^2 = 2 is exact.

Two-dimensional ``E[h(u1) h(u2)]`` (the correlation map) uses the probabilists' Gauss-Hermite
product rule with :data:`NODES_2D` nodes per axis on ``u1 = sqrt(q1) z1``,
``u2 = sqrt(q2) (c z1 + sqrt(1 - c^2) z2)``: exact for polynomials of degree < 2n, error far
below 1e-8 for smooth activations at q* of order 1; for kinked activations it is about 1% for
E[f f] and a few % for E[f' f'] (a step function), which only enters chi_c in the chaotic
phase, where ReLU-like activations never are. Tests check both against Monte Carlo.

f and f' are evaluated in float64 with torch (f' by autograd), so every activation of
:mod:`initlab.activations` works, options included.

>>> round(float(expect("relu", 1.0, power=2)), 12), round(float(expect("tanh", 1.0, "df", 2)), 6)
(0.5, 0.464403)
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from initlab.activations import Activation, resolve

POINTS = 1200  # 1-d trapezoid nodes on [-10, 10] (even: symmetric, no node at 0)
NODES_2D = 48  # per axis of the 2-d product rule


@functools.lru_cache(maxsize=4)
def rule(n: int = NODES_2D) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the n-point Gauss-Hermite rule for E[g(z)], z ~ N(0, 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / math.sqrt(2.0 * math.pi)


@functools.lru_cache(maxsize=1)
def grid() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the 1-d trapezoid rule (weights sum to 1)."""
    z = np.linspace(-10.0, 10.0, POINTS)
    w = np.exp(-0.5 * z * z)
    return z, w / w.sum()


def spec_of(activation: str | Activation | None) -> str:
    """The canonical spec string of an activation (None: identity)."""
    if isinstance(activation, str):
        return _spec(activation)
    return resolve(activation).spec


@functools.lru_cache(maxsize=256)
def _spec(text: str) -> str:
    return resolve(text).spec


@functools.lru_cache(maxsize=64)
def _fn(spec: str):
    return resolve(spec).fn()


def values(activation, u: np.ndarray, grad: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(f(u), f'(u)) elementwise in float64 (f' by autograd; None when ``grad`` is False)."""
    t = torch.tensor(np.asarray(u, dtype=np.float64))
    if not grad:
        with torch.no_grad():
            return _fn(spec_of(activation))(t).numpy(), None
    with torch.enable_grad():  # also under a caller's no_grad (init_ samples under one)
        t.requires_grad_(True)
        y = _fn(spec_of(activation))(t)
        (dy,) = torch.autograd.grad(y.sum(), t, allow_unused=True)
    if dy is None:  # a constant function
        dy = torch.zeros_like(t)
    return y.detach().numpy(), dy.numpy()


def expect(activation, q, which: str = "f", power: int = 1) -> np.ndarray:
    """E[h(sqrt(q) z)^power] with h = f (``which="f"``) or f' (``"df"``), for an array of q.

    >>> round(float(expect("identity", 2.0, power=2)), 12)
    2.0
    """
    q = np.maximum(np.asarray(q, dtype=np.float64), 0.0)
    z, w = grid()
    f, df = values(activation, np.sqrt(q)[..., None] * z, grad=which != "f")
    h = f if which == "f" else df
    return (h**power) @ w


def expect2(activation, q1, q2, q12, which: str = "f") -> np.ndarray:
    """E[h(u1) h(u2)] for (u1, u2) centred Gaussian with variances q1, q2 and covariance q12
    (arrays broadcast); h = f or f' (``which="df"``).

    >>> round(float(expect2("identity", 1.0, 4.0, 1.5)), 10)
    1.5
    """
    q1, q2, q12 = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (q1, q2, q12)))
    q1, q2 = np.maximum(q1, 0.0), np.maximum(q2, 0.0)
    denom = np.sqrt(q1 * q2)
    c = np.clip(np.divide(q12, denom, out=np.zeros_like(q12), where=denom > 0), -1.0, 1.0)
    z, w = rule(NODES_2D)
    z1, z2 = z[:, None], z[None, :]
    s1, s2 = np.sqrt(q1)[..., None, None], np.sqrt(q2)[..., None, None]
    cc = c[..., None, None]
    u1 = np.broadcast_to(s1 * z1, (*c.shape, len(z), 1))
    u2 = s2 * (cc * z1 + np.sqrt(1.0 - cc * cc) * z2)
    f1, d1 = values(activation, u1[..., 0], grad=which != "f")
    f2, d2 = values(activation, u2, grad=which != "f")
    h1, h2 = (f1, f2) if which == "f" else (d1, d2)
    inner = h2 @ w  # over z2: [..., n]
    return (h1 * inner) @ w
