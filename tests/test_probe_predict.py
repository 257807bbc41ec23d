"""Mean-field variance prediction: closed forms, the recurrence, and averages over weight draws."""

from __future__ import annotations

import math

import pytest
import torch

import initlab
from initlab.initializers.gain import second_moment
from initlab.probe import Step, gaussian_moments, predict_stack, probe
from initlab.probe.experiment import build_stack


@pytest.mark.parametrize("q", [0.01, 1.0, 4.0])
def test_gaussian_moments_closed_forms(q):
    m1, m2 = gaussian_moments("relu", q)
    assert m1 == pytest.approx(math.sqrt(q / (2 * math.pi)), rel=1e-9)
    assert m2 == pytest.approx(q / 2, rel=1e-9)
    assert gaussian_moments("identity", q) == pytest.approx((0.0, q), abs=1e-12)
    for act in ("tanh", "gelu", "selu", "sigmoid"):  # the initializer library's quadrature
        assert gaussian_moments(act, q)[1] == pytest.approx(second_moment(act, q), rel=1e-12)


def test_gaussian_moments_against_monte_carlo(gen):
    z = torch.randn(2_000_000, generator=gen, dtype=torch.float64)
    y = torch.tanh(math.sqrt(2.5) * z)
    m1, m2 = gaussian_moments("tanh", 2.5)
    assert m1 == pytest.approx(0.0, abs=1e-12)
    assert m2 == pytest.approx(float((y * y).mean()), abs=5 * float((y * y).std()) / 1414)


def test_recurrence_uses_each_layers_own_q():
    steps = [Step("0", "weight", 1.0, width=100), Step("1", "activation", activation="tanh"),
             Step("2", "weight", 1.0, width=100), Step("3", "activation", activation="tanh")]  # fmt: skip
    p = predict_stack(steps, input_second_moment=1.0)
    q2 = second_moment("tanh", 1.0)  # pre-activation variance of layer 2
    assert p[2].variance == pytest.approx(q2)
    m1, m2 = gaussian_moments("tanh", q2)
    assert p[3].variance == pytest.approx(m2 - m1 * m1)
    # a constant gain (the slope at 0) would predict q = 1 at every layer: off by > 50%
    assert p[2].variance < 0.5


def test_band_widens_like_sqrt_two_over_width_per_layer():
    steps = [Step(str(i), "weight", 1.0, width=50) for i in range(4)]
    p = predict_stack(steps, input_second_moment=2.0, band=2.0)
    for i, pred in enumerate(p, start=1):
        assert pred.variance == pytest.approx(2.0)
        half = 2.0 * math.sqrt(i * 2.0 / 50)
        assert math.log(pred.upper / pred.variance) == pytest.approx(half)
        assert math.log(pred.variance / pred.lower) == pytest.approx(half)


def test_linear_stack_is_exact_product_of_gains_and_bias():
    steps = [Step("a", "weight", 2.0, 0.5, width=10), Step("b", "weight", 0.25, width=10)]
    p = predict_stack(steps, input_second_moment=3.0)
    assert p[0].variance == pytest.approx(6.5) and p[1].variance == pytest.approx(6.5 / 4)


def _measured_vs_predicted(act: str, init: str, draws: int, depth: int, width: int, batch: int):
    x = torch.randn(batch, width, generator=torch.Generator().manual_seed(12345))
    measured, predicted, inside = [], [], []
    for d in range(draws):
        model = build_stack(act, depth, width, bias=False)
        initlab.init_(model, init, generator=torch.Generator().manual_seed(d))
        report = probe(model, x)
        measured.append([layer.var for layer in report.layers])
        predicted.append([layer.predicted_var for layer in report.layers])
        inside.append([layer.predicted_lower <= layer.var <= layer.predicted_upper
                       for layer in report.layers])  # fmt: skip
    m = torch.tensor(measured, dtype=torch.float64).mean(0)
    p = torch.tensor(predicted, dtype=torch.float64).mean(0)
    coverage = torch.tensor(inside, dtype=torch.float64).mean(0)
    return m, p, coverage


def test_prediction_matches_average_of_a_few_small_nets():
    m, p, _ = _measured_vs_predicted("tanh", "he_normal", draws=6, depth=4, width=128, batch=128)
    assert torch.all((p / m - 1).abs() < 0.10), (p / m - 1).tolist()


@pytest.mark.slow
@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("init", ["he_normal", "xavier_normal"])
def test_prediction_within_10_percent_over_50_draws_10x512(act, init):
    m, p, coverage = _measured_vs_predicted(act, init, draws=50, depth=10, width=512, batch=512)
    rel = (p / m - 1).abs()
    print(f"{act}/{init}: max |pred/measured - 1| = {rel.max():.4f}; band coverage min "
          f"{coverage.min():.2f}")  # fmt: skip
    assert torch.all(rel < 0.10), rel.tolist()
    # single networks: most fall inside the finite-width band at every layer
    assert torch.all(coverage >= 0.8), coverage.tolist()
