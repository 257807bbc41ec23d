"""auto: the activation that really follows each layer, and the gain it implies."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.initializers.gain import second_moment, variance_scale


class ConvGelu(nn.Module):
    """A custom block whose activation is a functional call, not a module."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        x = F.gelu(self.conv(x))
        x = x.mean(dim=(2, 3))
        return self.head(x)


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(20, 50)
        self.b = nn.Linear(50, 5)

    def forward(self, x):
        h = self.a(x)
        if h.sum() > -1e9:
            h = torch.tanh(h)
        return self.b(h)


class Reversed(nn.Module):
    """Modules declared in the opposite order of use."""

    def __init__(self):
        super().__init__()
        self.last = nn.Linear(30, 4)
        self.act = nn.Sigmoid()
        self.first = nn.Linear(10, 30)
        self.act0 = nn.ELU()

    def forward(self, x):
        return self.last(self.act0(self.first(x)))


def test_auto_finds_functional_gelu_after_conv_inside_custom_module(gen):
    model = ConvGelu()
    report = initlab.init_(model, "auto", generator=gen)
    row = report.row("conv.weight")
    assert row.activation == "gelu"
    assert row.gain == pytest.approx(math.sqrt(variance_scale("gelu")))
    assert abs(float(model.conv.weight.detach().std()) / row.target_std - 1) < 0.05
    assert report.row("head.weight").activation == "none"
    assert any("torch.fx" in n for n in report.notes)


def test_auto_picks_lecun_normal_for_selu(gen):
    model = nn.Sequential(nn.Linear(400, 300), nn.SELU(), nn.Linear(300, 10))
    report = initlab.init_(model, "auto", generator=gen)
    assert report.row("0.weight").activation == "selu"
    assert report.row("0.weight").gain == pytest.approx(1.0, abs=1e-6)
    assert abs(float(model[0].weight.std()) * math.sqrt(400) - 1) < 0.02


def test_untraceable_model_uses_example_input(gen):
    report = initlab.init_(Branchy(), "auto", generator=gen, example_input=torch.zeros(2, 20))
    assert report.row("a.weight").activation == "tanh"
    assert report.row("b.weight").activation == "none"
    assert any("example_input" in n for n in report.notes)


def test_untraceable_model_without_input_falls_back_to_declaration_order(gen):
    report = initlab.init_(Branchy(), "auto", generator=gen)
    assert report.row("a.weight").activation == "none"  # no activation module is declared
    assert any("declaration order" in n for n in report.notes)


def test_tracing_follows_call_order_not_declaration_order(gen):
    report = initlab.init_(Reversed(), "auto", generator=gen)
    assert report.row("first.weight").activation == "elu"
    assert report.row("last.weight").activation == "none"


def test_explicit_nonlinearity_overrides(gen):
    report = initlab.init_(
        Reversed(), "auto", nonlinearity="leaky_relu:negative_slope=0.2", generator=gen
    )
    assert report.row("first.weight").gain == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2)
    )


def test_tracing_passes_through_batchnorm_dropout_and_flatten(gen):
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.BatchNorm2d(8),
        nn.Dropout(0.1),
        nn.Flatten(),
        nn.Identity(),
        nn.Tanh(),
    )
    report = initlab.init_(model, "auto", generator=gen)
    assert report.row("0.weight").activation == "tanh"


@pytest.mark.parametrize(
    "act, expected",
    [
        ("relu", 0.5),
        ("identity", 1.0),
        ("selu", 1.0),
        ("leaky_relu:negative_slope=0.2", (1 + 0.04) / 2),
    ],
)
def test_second_moment_exact_cases(act, expected):
    assert second_moment(act) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "gelu", "silu", "elu", "mish", "softplus"])
def test_second_moment_matches_monte_carlo(act):
    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fn = initlab.activations.resolve(act).fn()
    mc = float((fn(z) ** 2).mean())
    assert second_moment(act) == pytest.approx(mc, rel=5e-3)


def test_unknown_activation_suggests():
    with pytest.raises(initlab.InitSpecError, match="Did you mean 'gelu'"):
        initlab.init_(nn.Linear(2, 2), "auto", nonlinearity="gelo")
