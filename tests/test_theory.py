"""initlab.theory: quadrature vs Monte Carlo, the critical line vs an independent root solve,
the divergence of xi_c, and theory vs measured networks at init."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from initlab.errors import ConfigError
from initlab.theory import (
    c_star,
    chi_1,
    critical_point,
    expect,
    expect2,
    phase_diagram,
    propagate,
    q_star,
    xi_c,
    xi_q,
)


def _gelu(x):
    return torch.nn.functional.gelu(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize(
    ("act", "f", "q"),
    [("tanh", np.tanh, 0.7), ("relu", lambda x: np.maximum(x, 0), 2.0), ("gelu", _gelu, 1.3)],
)
def test_quadrature_matches_monte_carlo(act, f, q):
    z = np.random.default_rng(0).standard_normal(2_000_000)
    y = f(math.sqrt(q) * z)
    for power in (1, 2):
        mc = y**power
        err = 5 * mc.std() / math.sqrt(len(z))
        assert abs(float(expect(act, q, power=power)) - mc.mean()) < err


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_two_dimensional_quadrature_matches_monte_carlo(act):
    """Smooth tanh: to Monte Carlo error; ReLU's kink: within the documented 1% (E[f f]) and
    a few % (E[f' f'], a step function)."""
    rng = np.random.default_rng(1)
    z1, z2 = rng.standard_normal((2, 1_000_000))
    q1, q2, c = 0.8, 1.5, 0.6
    u1 = math.sqrt(q1) * z1
    u2 = math.sqrt(q2) * (c * z1 + math.sqrt(1 - c * c) * z2)
    f = np.tanh if act == "tanh" else (lambda x: np.maximum(x, 0))
    df = (lambda x: 1 - np.tanh(x) ** 2) if act == "tanh" else (lambda x: (x > 0) * 1.0)
    q12 = c * math.sqrt(q1 * q2)
    for which, h in (("f", f), ("df", df)):
        mc = h(u1) * h(u2)
        err = 5 * mc.std() / math.sqrt(len(z1))
        if act == "relu":
            err = (0.01 if which == "f" else 0.04) * mc.mean()
        assert abs(float(expect2(act, q1, q2, q12, which)) - mc.mean()) < err


def _independent_critical_sigma_w2(sigma_b2: float) -> float:
    """A different method: trapezoid on a fine grid, plain fixed-point iteration for q*, and a
    scan of sigma_w^2 with linear interpolation at chi_1 = 1."""
    z = np.linspace(-10, 10, 2001)
    w = np.exp(-z * z / 2)
    w /= np.trapezoid(w, z)
    sw2 = np.linspace(1.6, 1.9, 31)
    q = np.ones_like(sw2)
    for _ in range(120):
        q = sw2 * np.trapezoid(np.tanh(np.sqrt(q)[:, None] * z) ** 2 * w, z, axis=1) + sigma_b2
    d = 1 - np.tanh(np.sqrt(q)[:, None] * z) ** 2
    chi = sw2 * np.trapezoid(d * d * w, z, axis=1)
    i = int(np.nonzero(chi > 1)[0][0])
    return float(sw2[i - 1] + (1 - chi[i - 1]) * (sw2[i] - sw2[i - 1]) / (chi[i] - chi[i - 1]))


def test_tanh_critical_point_matches_an_independent_root_solve():
    point = critical_point("tanh", sigma_b2=0.05)
    oracle = _independent_critical_sigma_w2(0.05)
    assert abs(point.sigma_w2 - oracle) / oracle < 0.01
    assert abs(point.sigma_w2 - oracle) / oracle < 1e-3  # in fact much closer
    # Monte Carlo: at that point q* is a fixed point and chi_1 = 1
    z = np.random.default_rng(2).standard_normal(500_000)
    u = math.sqrt(point.q_star) * z
    assert point.sigma_w2 * np.mean(np.tanh(u) ** 2) + 0.05 == pytest.approx(point.q_star, rel=0.01)
    assert point.sigma_w2 * np.mean((1 - np.tanh(u) ** 2) ** 2) == pytest.approx(1.0, rel=0.01)


def test_xi_c_diverges_at_the_critical_point_on_both_sides():
    sw2 = critical_point("tanh", sigma_b2=0.05).sigma_w2
    xi = xi_c("tanh", sw2 * np.array([0.9, 0.99, 1.01, 1.1]), 0.05)
    assert xi[1] / xi[0] >= 5 and xi[2] / xi[3] >= 5
    assert c_star("tanh", sw2 * 0.9, 0.05) == 1.0 and c_star("tanh", sw2 * 1.1, 0.05) < 0.95


def test_relu_critical_line_is_two_at_zero_bias():
    assert critical_point("relu", sigma_b2=0.0).sigma_w2 == pytest.approx(2.0, abs=1e-12)
    assert float(chi_1("relu", 2.0, 0.0)) == pytest.approx(1.0, abs=1e-12)
    assert critical_point("identity").sigma_w2 == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "act",
    [
        "hardtanh",
        *(pytest.param(a, marks=pytest.mark.slow) for a in ("gelu", "silu", "mish", "elu")),
    ],
)
def test_every_auto_activation_has_a_critical_point(act):
    p = critical_point(act, sigma_b2=0.05)
    assert float(chi_1(act, p.sigma_w2, 0.05)) == pytest.approx(1.0, abs=1e-6)
    assert float(q_star(act, p.sigma_w2, 0.05)) == pytest.approx(p.q_star, rel=1e-4)


def test_q_star_option_is_the_closed_form_of_the_line():
    p = critical_point("tanh", q_star=0.01)
    assert p.sigma_b2 < 1e-4 and float(
        chi_1("tanh", p.sigma_w2, p.sigma_b2, 0.01)
    ) == pytest.approx(1)
    assert float(q_star("tanh", p.sigma_w2, p.sigma_b2)) == pytest.approx(0.01, rel=1e-3)


def test_bad_input_is_one_line():
    with pytest.raises(ConfigError, match="q_star"):
        critical_point("tanh", q_star=-1.0)
    with pytest.raises(ConfigError, match="not both"):
        critical_point("tanh", sigma_b2=0.1, q_star=0.5)
    with pytest.raises(ConfigError, match="sigma_b2"):
        critical_point("tanh", sigma_b2=-0.1)


def test_phase_diagram_marks_the_phases_and_line():
    d = phase_diagram("tanh", [1.5, 2.5], [0.0, 0.05])
    assert d["phase"] == [["chaotic", "chaotic"], ["ordered", "chaotic"]]
    line = {round(p["sigma_b2"], 2): p["sigma_w2"] for p in d["critical_line"]}
    assert line[0.0] == pytest.approx(1.0, abs=1e-6) and 1.5 < line[0.05] < 2.5
    assert all(x is None or x > 0 for r in d["xi_q"] for x in r)
    assert float(xi_q("tanh", 1.5, 0.05)) > 0


def _measure(sw2, sb2, x1, x2, depth, draws, seed=0):
    rng = np.random.default_rng(seed)
    n = x1.shape[0]
    q = np.zeros((draws, depth))
    c = np.zeros((draws, depth))
    for d in range(draws):
        y = np.stack([x1, x2], 1)
        for layer in range(depth):
            w = rng.standard_normal((n, n)) * math.sqrt(sw2 / n)
            h = w @ y + rng.standard_normal((n, 1)) * math.sqrt(sb2)
            q[d, layer] = float((h[:, 0] ** 2).mean())
            c[d, layer] = float(
                h[:, 0] @ h[:, 1] / np.sqrt((h[:, 0] @ h[:, 0]) * (h[:, 1] @ h[:, 1]))
            )
            y = np.tanh(h)
    return q.mean(0), c.mean(0)


@pytest.mark.slow
@pytest.mark.parametrize(("sw2", "sb2"), [(1.5, 0.05), (2.5, 0.05), (1.0, 0.0)])
def test_theory_matches_measured_nets_at_init(sw2, sb2):
    n, depth = 512, 10
    rng = np.random.default_rng(7)
    x1 = rng.standard_normal(n) * 1.2
    x2 = 0.5 * x1 + rng.standard_normal(n)
    q, c = _measure(sw2, sb2, x1, x2, depth, draws=20)
    m = lambda a, b: float(a @ b) / n  # noqa: E731
    pred = propagate("tanh", sw2, sb2, sw2 * m(x1, x1) + sb2, sw2 * m(x2, x2) + sb2,
                     sw2 * m(x1, x2) + sb2, depth)  # fmt: skip
    assert np.max(np.abs(q / np.array(pred["q1"]) - 1)) < 0.05
    assert np.max(np.abs(c - np.array(pred["c"]))) < 0.05
    print(
        f"sw2={sw2} sb2={sb2}: max q error {np.max(np.abs(q / np.array(pred['q1']) - 1)):.4f}, "
        f"max c error {np.max(np.abs(c - np.array(pred['c']))):.4f}"
    )
