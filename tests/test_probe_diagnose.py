"""The classic histogram experiment's numbers and the diagnosis rules that read them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.probe import diagnose, histogram_experiment, probe
from initlab.probe.diagnose import growth_per_layer
from initlab.results.probe_records import ProbeRecord


def _kinds(run) -> list[str]:
    return [f.kind for f in run.probe.findings]


def _outer_fraction(layer, low: float = 0.1, high: float = 0.9) -> float:
    """Fraction of outputs below ``low`` or above ``high``, from the 30 bins over [0, 1]."""
    h = layer.histogram
    edges = h.edges
    below = sum(c for c, right in zip(h.counts, edges[1:], strict=True) if right <= low + 1e-12)
    above = sum(c for c, left in zip(h.counts, edges[:-1], strict=True) if left >= high - 1e-12)
    return (below + above + h.underflow + h.overflow) / h.total


def test_sigmoid_unit_normal_saturates():
    run = histogram_experiment("sigmoid", "normal:std=1", layers=5, width=100, samples=1000)
    layer5 = run.activation_layers()[-1]
    h = layer5.histogram
    assert len(h.counts) == 30 and (h.lo, h.hi) == (0.0, 1.0)  # the classic figure's bins
    assert _outer_fraction(layer5) >= 0.60
    assert _kinds(run) == ["saturated"]


def test_sigmoid_tiny_normal_collapses():
    run = histogram_experiment("sigmoid", "normal:std=0.01")
    layer5 = run.activation_layers()[-1]
    assert layer5.std < 0.02 and abs(layer5.mean - 0.5) < 0.01
    # the experiment backpropagates a loss (issue 19): tiny weights also starve layer 1's grads
    assert _kinds(run) == ["collapsed", "vanishing gradients"]
    assert _kinds(histogram_experiment("sigmoid", "normal:std=0.01", loss=None)) == ["collapsed"]


def test_sigmoid_lecun_stays_spread_without_warning():
    run = histogram_experiment("sigmoid", "lecun_normal", loss=None)
    assert 0.08 <= run.activation_layers()[-1].std <= 0.2
    assert run.probe.findings == []
    # with the gradients the experiment records by default (issue 19), sigmoid's derivative
    # (at most 1/4) shrinks the backward signal: the gradient rule fires, nothing else
    assert _kinds(histogram_experiment("sigmoid", "lecun_normal")) == ["vanishing gradients"]


def test_relu_he_keeps_spread_lecun_vanishes_constant_is_symmetric():
    he_run = histogram_experiment("relu", "he_normal")
    he = he_run.activation_layers()
    assert 0.5 <= he[-1].std / he[0].std <= 2.0
    assert he_run.probe.findings == []
    lecun = histogram_experiment("relu", "lecun_normal")
    acts = lecun.activation_layers()
    assert acts[-1].std / acts[0].std < 0.4
    assert "vanishing" in _kinds(lecun)
    constant = histogram_experiment("relu", "constant:value=0.01")
    assert _kinds(constant)[0] == "symmetric"
    # names the first layer as the panels do (issue 19), not by module name '0'
    assert "layer 1 (linear)" in constant.probe.findings[0].message


def test_dead_relus_named_with_a_fix(gen):
    model = nn.Sequential(nn.Linear(20, 50), nn.ReLU(), nn.Linear(50, 50), nn.ReLU())
    initlab.init_(model, "he_normal", bias="constant:value=-1.5", generator=gen)
    report = probe(model, torch.randn(200, 20, generator=gen))
    dead = [f for f in report.findings if f.kind == "dead"]
    assert len(dead) == 1 and dead[0].layer == "3"
    assert report.layer("3").dead_units > 0.1
    assert "leaky_relu" in dead[0].fix
    # module '3' is the second ReLU: "layer 2 (relu)", as the panels name it (issue 19)
    assert str(dead[0]).startswith("dead: layer 2 (relu)") and "\n" not in str(dead[0])


def test_vanishing_gradients_first_to_last_layer(gen):
    mods: list[nn.Module] = []
    for _ in range(8):
        mods += [nn.Linear(50, 50), nn.Sigmoid()]
    model = nn.Sequential(*mods, nn.Linear(50, 1))
    initlab.init_(model, "normal:std=0.05", generator=gen)
    x, y = torch.randn(200, 50, generator=gen), torch.randn(200, 1, generator=gen)
    report = probe(model, x, targets=y, loss_fn=F.mse_loss)
    kinds = [f.kind for f in report.findings]
    assert "vanishing gradients" in kinds
    norms = [g.norm for g in report.weight_grads]
    assert norms[0] / norms[-1] < 0.01
    # no loss, no gradient rule
    assert "vanishing gradients" not in [f.kind for f in probe(model, x).findings]


def test_exploding_and_nonfinite():
    run = histogram_experiment("relu", "normal:std=1", layers=4, width=64, samples=200)
    assert "exploding" in _kinds(run)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    with torch.no_grad():
        model[0].weight.fill_(float("inf"))
    report = probe(model, torch.ones(3, 4))
    exploding = [f for f in report.findings if f.kind == "exploding"]
    assert exploding[0].layer == "0" and "NaN/inf" in exploding[0].message


def test_diagnosis_from_a_stored_record_needs_no_model():
    run = histogram_experiment("sigmoid", "normal:std=1", layers=3, width=50, samples=300)
    again = ProbeRecord.from_dict(run.probe.to_dict())
    assert diagnose(again) == run.probe.findings


@pytest.mark.parametrize(
    ("stds", "expected"),
    [([1.0, 0.5, 0.25, 0.125], 0.5), ([9.0, 1.0, 1.0, 1.0], 1.0), ([1.0, 2.0], 2.0), ([3.0], 1.0)],
)
def test_growth_per_layer_skips_the_input_transient(stds, expected):
    assert growth_per_layer(stds) == pytest.approx(expected)
