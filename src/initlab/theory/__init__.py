"""Mean-field theory of signal propagation at init: pure float64 numerics, no training.

Gaussian expectations (:mod:`~initlab.theory.gaussian`), the length and correlation maps,
their fixed points and depth scales (:mod:`~initlab.theory.meanfield`), the critical line and
the phase diagram (:mod:`~initlab.theory.critical`).

>>> from initlab import theory
>>> round(theory.critical_point("tanh", sigma_b2=0.05).sigma_w2, 3)
1.761
"""

from initlab.theory.critical import (
    CriticalPoint,
    critical_line,
    critical_point,
    phase_diagram,
)
from initlab.theory.gaussian import expect, expect2
from initlab.theory.meanfield import (
    c_star,
    chi_1,
    chi_c,
    chi_q,
    correlation_map,
    length_map,
    propagate,
    q_star,
    xi_c,
    xi_q,
)

__all__ = [
    "CriticalPoint",
    "c_star",
    "chi_1",
    "chi_c",
    "chi_q",
    "correlation_map",
    "critical_line",
    "critical_point",
    "expect",
    "expect2",
    "length_map",
    "phase_diagram",
    "propagate",
    "q_star",
    "xi_c",
    "xi_q",
]
