"""The critical line chi_1 = 1 and the phase diagram (sigma_w^2 x sigma_b^2).

On the critical line, q* and the weight variance determine each other: at a length q,
chi_1 = 1 means ``sigma_w^2(q) = 1 / E[f'(sqrt(q) z)^2]``, and q is a fixed point when
``sigma_b^2(q) = q - sigma_w^2(q) E[f(sqrt(q) z)^2]``. :func:`critical_point` with ``q_star``
uses this directly; with ``sigma_b2`` it solves sigma_b^2(q) = sigma_b2 for q by bisection
in log q, and where that has no root (ReLU: sigma_b^2(q) = 0 for every q) falls back to a
bisection on sigma_w^2 of chi_1(sigma_w^2, sigma_b^2) = 1 with q* solved at each step.

>>> round(critical_point("relu", sigma_b2=0.0).sigma_w2, 12), critical_point("identity").sigma_w2
(2.0, 1.0)
>>> round(critical_point("tanh", sigma_b2=0.05).sigma_w2, 4)
1.761
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from initlab.errors import ConfigError
from initlab.theory.gaussian import expect, spec_of
from initlab.theory.meanfield import c_star, chi_1, chi_c, chi_q, q_star


@dataclass(frozen=True)
class CriticalPoint:
    """A point of the critical line: weight and bias variance and the length fixed point."""

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float  # inf where q grows without bound on the line (ReLU with a bias)


def _on_line(spec: str, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sw2 = 1.0 / np.maximum(expect(spec, q, "df", 2), 1e-300)
    return sw2, q - sw2 * expect(spec, q, power=2)


def _bisect_sigma_w2(spec: str, sb2: float) -> float:
    lo, hi = 1e-3, 1e3
    if chi_1(spec, lo, sb2) > 1 or chi_1(spec, hi, sb2) < 1:
        raise ConfigError(
            f"Activation '{spec}' has no critical point at sigma_b2={sb2}: chi_1 does not cross 1 "
            "for sigma_w2 in [0.001, 1000]. Allowed: a bounded or ReLU-like activation, or "
            "another sigma_b2."
        )
    for _ in range(52):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if chi_1(spec, mid, sb2) < 1 else (lo, mid)
    return math.sqrt(lo * hi)


@functools.lru_cache(maxsize=512)
def _critical(spec: str, sigma_b2: float | None, qs: float | None) -> CriticalPoint:
    if qs is not None:
        if not (qs > 0 and math.isfinite(qs)):
            raise ConfigError(f"Bad q_star={qs}: must be a finite length > 0.")
        sw2, sb2 = (float(x) for x in _on_line(spec, np.asarray(qs)))
        if sb2 < -1e-12:
            raise ConfigError(
                f"q_star={qs} is not on the critical line of '{spec}': it needs sigma_b2 = "
                f"{sb2:.3g} < 0. Allowed: a q_star whose sigma_b2 is >= 0 (for tanh every q* > 0)."
            )
        return CriticalPoint(spec, sw2, max(sb2, 0.0), float(qs))
    sb2 = float(sigma_b2 or 0.0)
    if sb2 < 0 or not math.isfinite(sb2):
        raise ConfigError(f"Bad sigma_b2={sigma_b2}: must be a finite variance >= 0.")
    if sb2 == 0.0:  # f(0) = 0 (tanh, ReLU): the line ends at q* -> 0, sigma_w^2 = 1 / f'(0)^2
        sw2_0, b_0 = (float(x) for x in _on_line(spec, np.asarray(1e-12)))
        q0 = float(q_star(spec, sw2_0, 0.0))
        if abs(b_0) < 1e-15 and abs(float(chi_1(spec, sw2_0, 0.0, q0)) - 1.0) < 1e-6:
            return CriticalPoint(spec, sw2_0, 0.0, q0)
    logq = np.linspace(-10, 3, 131)
    _, b = _on_line(spec, 10.0**logq)
    d = b - sb2
    for i in np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]:
        lo, hi = logq[i], logq[i + 1]
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if (float(_on_line(spec, np.asarray(10.0**mid))[1]) - sb2) * d[i] > 0:
                lo = mid
            else:
                hi = mid
        q = 10.0 ** (0.5 * (lo + hi))
        sw2 = float(_on_line(spec, np.asarray(q))[0])
        if float(chi_q(spec, sw2, sb2, q)) < 1.0:  # a stable fixed point (GELU has others)
            return CriticalPoint(spec, sw2, sb2, q)
    sw2 = _bisect_sigma_w2(spec, sb2)
    return CriticalPoint(spec, sw2, sb2, float(q_star(spec, sw2, sb2)))


def critical_point(
    activation=None, sigma_b2: float | None = None, q_star: float | None = None
) -> CriticalPoint:
    """The point of the critical line chi_1 = 1 at bias variance ``sigma_b2`` (default 0), or
    the one whose length fixed point is ``q_star`` (then sigma_b2 follows). Cached."""
    if sigma_b2 is not None and q_star is not None:
        raise ConfigError(
            "Give sigma_b2 or q_star, not both: on the critical line one fixes the other."
        )
    return _critical(spec_of(activation), None if sigma_b2 is None else float(sigma_b2),
                     None if q_star is None else float(q_star))  # fmt: skip


def critical_line(activation, sigma_b2s) -> list[CriticalPoint]:
    """The critical point at each bias variance of ``sigma_b2s``."""
    return [critical_point(activation, sigma_b2=float(b)) for b in sigma_b2s]


def phase_diagram(activation, sigma_w2s, sigma_b2s) -> dict:
    """chi_1, xi_c, xi_q, q* and c* on the grid (rows: sigma_b^2, columns: sigma_w^2), the
    phase of each cell ("ordered": chi_1 < 1, "chaotic": chi_1 > 1) and the critical line.

    >>> d = phase_diagram("tanh", [1.0, 3.0], [0.05])
    >>> d["phase"], [round(p["sigma_w2"], 3) for p in d["critical_line"]]
    ([['ordered', 'chaotic']], [1.761])
    """
    spec = spec_of(activation)
    sw2 = np.asarray(sigma_w2s, dtype=np.float64)[None, :]
    sb2 = np.asarray(sigma_b2s, dtype=np.float64)[:, None]
    sw2, sb2 = np.broadcast_arrays(sw2, sb2)
    q = q_star(spec, sw2, sb2)
    chi = chi_1(spec, sw2, sb2, q)
    c = c_star(spec, sw2, sb2, q)
    with np.errstate(divide="ignore"):
        xc = -1.0 / np.log(np.clip(chi_c(spec, sw2, sb2, q, c), 1e-300, None))
        xq = -1.0 / np.log(np.clip(chi_q(spec, sw2, sb2, q), 1e-300, None))
    line = []
    for b in sigma_b2s:
        try:
            p = critical_point(spec, sigma_b2=float(b))
        except ConfigError:
            continue
        line.append({"sigma_b2": float(b), "sigma_w2": p.sigma_w2, "q_star": p.q_star})

    def rows(a):
        return [[None if not np.isfinite(v) else float(v) for v in r] for r in a]

    return {
        "activation": spec,
        "sigma_w2": [float(x) for x in sigma_w2s],
        "sigma_b2": [float(x) for x in sigma_b2s],
        "chi_1": rows(chi),
        "xi_c": rows(xc),
        "xi_q": rows(xq),
        "q_star": rows(q),
        "c_star": rows(c),
        "phase": [["chaotic" if c > 1 else "ordered" for c in r] for r in chi],
        "critical_line": line,
    }
