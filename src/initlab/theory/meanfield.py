"""Mean-field signal propagation (Poole et al. 2016; Schoenholz et al. 2017).

A deep net with weights N(0, sigma_w^2 / fan_in), biases N(0, sigma_b^2) and activation f maps
the pre-activation length and the covariance of two inputs layer to layer:

    q_{l+1}   = sigma_w^2 E[f(u)^2] + sigma_b^2,                u ~ N(0, q_l)
    q12_{l+1} = sigma_w^2 E[f(u1) f(u2)] + sigma_b^2,           (u1, u2) ~ N(0, [[q1, q12], [q12, q2]])

The length map has a fixed point q*, the correlation map c -> (sigma_w^2 E[f(u1) f(u2)] +
sigma_b^2) / q* (at q1 = q2 = q*) a fixed point c* (1 in the ordered phase). Their slopes set
the depth scales of the approach (Schoenholz et al., eqs. 5 and 9):

    chi_1 = sigma_w^2 E[f'(u)^2]                      (the slope of the c-map at c = 1)
    chi_c = sigma_w^2 E[f'(u1) f'(u2)] at c*          xi_c = -1 / ln(chi_c)
    slope of the q-map at q*: chi_q = chi_1 + sigma_w^2 E[f''(u) f(u)]   xi_q = -1 / ln(chi_q)

chi_q is computed as the numerical derivative of the (quadrature) q-map, which is the same
number without needing f''. ``chi_1 = 1`` is the critical line between the ordered (chi_1 < 1)
and the chaotic (chi_1 > 1) phase; there xi_c diverges.

Every function takes arrays of (sigma_w^2, sigma_b^2) and broadcasts; q* is ``inf`` where
the length map has no finite fixed point (unbounded activations at large sigma_w^2).

>>> round(float(chi_1("relu", 2.0, 0.0)), 12), round(float(q_star("tanh", 1.5, 0.05)), 4)
(1.0, 0.418)
"""

from __future__ import annotations

import numpy as np

from initlab.theory.gaussian import expect, expect2

Q_INF = 1e12  # q above this counts as unbounded (q* = inf)


def _arr(*xs) -> list[np.ndarray]:
    return [np.asarray(x, dtype=np.float64) for x in np.broadcast_arrays(*xs)]


def length_map(activation, sigma_w2, sigma_b2, q) -> np.ndarray:
    """q_{l+1} from q_l: sigma_w^2 E[f(sqrt(q) z)^2] + sigma_b^2."""
    return np.asarray(sigma_w2) * expect(activation, q, power=2) + np.asarray(sigma_b2)


def q_star(activation, sigma_w2, sigma_b2, q0: float = 1.0, iterations: int = 30) -> np.ndarray:
    """The length fixed point reached from q0: plain iteration, then safeguarded Newton steps
    (a finite-difference slope); ``inf`` where q grows without bound."""
    sw2, sb2 = _arr(sigma_w2, sigma_b2)
    q = np.full(sw2.shape, float(q0))
    for _ in range(iterations):
        nxt = np.minimum(length_map(activation, sw2, sb2, q), 10 * Q_INF)
        done = np.all(np.abs(nxt - q) <= 1e-13 * np.maximum(q, 1e-300))
        q = nxt
        if done:
            break
    for _ in range(60):
        h = length_map(activation, sw2, sb2, q) - q
        step = 1e-6 * np.maximum(q, 1e-12)
        slope = (length_map(activation, sw2, sb2, q + step) - (q + step) - h) / step
        newton = q - h / np.where(np.abs(slope) > 1e-14, slope, -1.0)
        plain = q + h
        ok = (newton >= 0) & np.isfinite(newton) & (slope < 0)
        nxt = np.where(ok, newton, plain)
        if np.all(np.abs(nxt - q) <= 1e-12 * np.maximum(q, 1e-300)):
            q = nxt
            break
        q = np.minimum(nxt, 10 * Q_INF)
    # no fixed point: the map still pushes q up (ReLU at sigma_w^2 = 2 with a bias)
    growing = length_map(activation, sw2, sb2, q) - q > 1e-12 * np.maximum(q, 1.0)
    return np.where((q > Q_INF) | growing, np.inf, np.maximum(q, 0.0))


def _finite(q: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(q), q, Q_INF)


def chi_1(activation, sigma_w2, sigma_b2, q=None) -> np.ndarray:
    """sigma_w^2 E[f'(u)^2], u ~ N(0, q) (default q = q*): the mean squared singular value
    of one layer's Jacobian, and the slope of the correlation map at c = 1."""
    sw2, sb2 = _arr(sigma_w2, sigma_b2)
    q = q_star(activation, sw2, sb2) if q is None else np.asarray(q, dtype=np.float64)
    return sw2 * expect(activation, _finite(q), "df", 2)


def chi_q(activation, sigma_w2, sigma_b2, q=None) -> np.ndarray:
    """The slope of the length map at q (default q*; central difference)."""
    sw2, sb2 = _arr(sigma_w2, sigma_b2)
    q = q_star(activation, sw2, sb2) if q is None else np.broadcast_to(q, sw2.shape)
    q = _finite(np.asarray(q, dtype=np.float64))
    h = 1e-5 * np.maximum(q, 1e-8)
    lo = length_map(activation, sw2, sb2, np.maximum(q - h, 0.0))
    return (length_map(activation, sw2, sb2, q + h) - lo) / (q + h - np.maximum(q - h, 0.0))


def xi_q(activation, sigma_w2, sigma_b2) -> np.ndarray:
    """The depth scale of the approach of q to q*: -1 / ln(chi_q)."""
    with np.errstate(divide="ignore"):
        return -1.0 / np.log(np.clip(chi_q(activation, sigma_w2, sigma_b2), 1e-300, None))


def correlation_map(activation, sigma_w2, sigma_b2, c, q=None) -> np.ndarray:
    """c_{l+1} from c_l for two inputs at length q (default q*)."""
    sw2, sb2, c = _arr(sigma_w2, sigma_b2, c)
    q = q_star(activation, sw2, sb2) if q is None else np.broadcast_to(q, c.shape)
    q = _finite(np.asarray(q, dtype=np.float64))
    return (sw2 * expect2(activation, q, q, c * q) + sb2) / np.maximum(q, 1e-300)


def c_star(activation, sigma_w2, sigma_b2, q=None) -> np.ndarray:
    """The stable fixed point of the correlation map: 1 in the ordered phase (chi_1 <= 1),
    else the root of g(c) = (c_map(c) - c) / (1 - c) (g(1-) = 1 - chi_1 < 0) found by
    bisection on [0, 1) (on [-1, 0] when g(0) < 0); ``q``: q* when already known."""
    sw2, sb2 = _arr(sigma_w2, sigma_b2)
    q = q_star(activation, sw2, sb2) if q is None else np.broadcast_to(q, sw2.shape)
    chaotic = chi_1(activation, sw2, sb2, q) > 1.0
    out = np.ones(sw2.shape)
    if not chaotic.any():
        return out
    s, b, qq = sw2[chaotic], sb2[chaotic], q[chaotic]

    def g(c):
        return (correlation_map(activation, s, b, c, qq) - c) / (1.0 - c)

    at0 = g(np.zeros(s.shape))
    lo = np.where(at0 >= 0, 0.0, -1.0 + 1e-9)
    hi = np.where(at0 >= 0, 1.0 - 1e-7, 0.0)
    for _ in range(32):
        mid = 0.5 * (lo + hi)
        pos = g(mid) >= 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    out[chaotic] = np.where(at0 == 0, 0.0, 0.5 * (lo + hi))
    return out


def chi_c(activation, sigma_w2, sigma_b2, q=None, c=None) -> np.ndarray:
    """sigma_w^2 E[f'(u1) f'(u2)] at (q*, c*): the slope of the correlation map at c*
    (``q``, ``c``: q* and c* when already known)."""
    sw2, sb2 = _arr(sigma_w2, sigma_b2)
    q = q_star(activation, sw2, sb2) if q is None else np.broadcast_to(q, sw2.shape)
    q = _finite(np.asarray(q, dtype=np.float64))
    c = c_star(activation, sw2, sb2, q) if c is None else np.broadcast_to(c, sw2.shape)
    out = np.array(chi_1(activation, sw2, sb2, q), dtype=np.float64)
    inside = c < 1.0
    if inside.any():
        qi, ci = q[inside], c[inside]
        out[inside] = sw2[inside] * expect2(activation, qi, qi, ci * qi, which="df")
    return out


def xi_c(activation, sigma_w2, sigma_b2) -> np.ndarray:
    """The correlation depth scale -1 / ln(chi_c): how many layers two inputs' correlation
    takes to reach c*; it diverges on the critical line. Signals train up to about 6 xi_c
    layers (Schoenholz et al. 2017).

    >>> bool(xi_c("tanh", 1.2, 0.05) > xi_c("tanh", 1.0, 0.05))
    True
    """
    with np.errstate(divide="ignore"):
        return -1.0 / np.log(np.clip(chi_c(activation, sigma_w2, sigma_b2), 1e-300, None))


def propagate(activation, sigma_w2, sigma_b2, q1, q2, q12, depth: int) -> dict[str, list]:
    """Layer by layer (1..depth) q of two inputs and their correlation, from the first
    layer's pre-activation (co)variances q1, q2, q12.

    >>> out = propagate("tanh", 1.0, 0.0, 1.0, 1.0, 0.5, 3)
    >>> len(out["q1"]), round(out["c"][0], 3)
    (3, 0.5)
    """
    q1s, q2s, cs = [float(q1)], [float(q2)], [float(q12) / float(np.sqrt(q1 * q2))]
    a, b, ab = float(q1), float(q2), float(q12)
    for _ in range(depth - 1):
        na = float(length_map(activation, sigma_w2, sigma_b2, a))
        nb = float(length_map(activation, sigma_w2, sigma_b2, b))
        ab = float(sigma_w2 * expect2(activation, a, b, ab) + sigma_b2)
        a, b = na, nb
        q1s.append(a), q2s.append(b), cs.append(ab / float(np.sqrt(a * b)))
    return {"q1": q1s, "q2": q2s, "c": cs}
