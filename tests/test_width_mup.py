"""μP parametrization: shapes -> kinds, multiplier tables, optimizer groups, readout multiplier."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from initlab.errors import ConfigError
from initlab.models.mup import (
    apply_readout,
    lr_multiplier,
    mlp,
    multiplier_table,
    param_groups,
    plan_widths,
)
from initlab.train.parametrize import width_optimizer

torch.set_num_threads(1)


def _rows(plan):
    return {r.name: (r.kind, r.fan_in_mult, r.fan_out_mult, r.lr_mult) for r in plan.rows}


def test_kinds_and_multipliers_of_an_mlp_under_adam():
    plan = plan_widths(mlp, width=512, base_width=64, parametrization="mup", optimizer="adam")
    assert _rows(plan) == {
        "1.weight": ("input", 1.0, 8.0, 1.0),
        "1.bias": ("input", 1.0, 8.0, 1.0),
        "3.weight": ("hidden", 8.0, 8.0, 1 / 8),
        "3.bias": ("input", 1.0, 8.0, 1.0),
        "5.weight": ("output", 8.0, 1.0, 1.0),
        "5.bias": ("fixed", 1.0, 1.0, 1.0),
    }
    assert plan.readout == "5" and plan.readout_mult == 1 / 8


def test_sgd_multipliers_differ_from_adam():
    plan = plan_widths(mlp, width=512, base_width=64, parametrization="mup", optimizer="sgd")
    assert {n: r[3] for n, r in _rows(plan).items()} == {
        "1.weight": 8.0, "1.bias": 8.0, "3.weight": 1.0, "3.bias": 8.0,
        "5.weight": 8.0, "5.bias": 1.0,
    }  # fmt: skip


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_multiplier_table_matches_the_formulas(optimizer):
    m_in, m_out = 4.0, 4.0
    for kind, lr, var, forward in multiplier_table(optimizer):
        assert var == "1/fan_in"
        expected = {"lr": 1.0, "lr * m": m_out if kind == "input" else m_in, "lr / m": 1 / m_in}
        assert (
            lr_multiplier(kind, optimizer, m_in if kind != "input" else 1.0, m_out)
            == (expected[lr])
        ), (kind, lr)
        assert forward == ("x 1/m" if kind == "output" else "x 1")


def test_non_square_hidden_matrix_sgd_uses_fan_out_over_fan_in():
    assert lr_multiplier("hidden", "sgd", 2.0, 8.0) == 4.0
    assert lr_multiplier("hidden", "adam", 2.0, 8.0) == 0.5


@pytest.mark.parametrize("parametrization", ["sp", "mup"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_base_width_is_standard_parametrization(parametrization, optimizer):
    plan = plan_widths(mlp, width=64, base_width=64, parametrization=parametrization,
                       optimizer=optimizer)  # fmt: skip
    assert all(r.lr_mult == 1.0 for r in plan.rows) and plan.readout_mult == 1.0


def test_sp_has_no_multipliers_at_any_width():
    plan = plan_widths(mlp, width=1024, base_width=64, parametrization="sp", optimizer="adam")
    assert all(r.lr_mult == 1.0 for r in plan.rows) and plan.readout_mult == 1.0
    assert {r.kind for r in plan.rows} == {"input", "hidden", "output", "fixed"}


def test_optimizer_groups_carry_the_hand_computed_lr_per_parameter():
    width, base, lr = 256, 64, 0.01
    model = mlp(width=width, depth=3)
    for optimizer, cls in (("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)):
        plan = plan_widths(mlp, width=width, base_width=base, optimizer=optimizer, depth=3)
        opt = width_optimizer(model, plan, optimizer, lr)
        assert isinstance(opt, cls)
        got = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
        m = width / base
        hand = {  # by hand from the tables: Adam hidden lr/m; SGD input, biases and readout lr*m
            "adam": {"1.weight": lr, "1.bias": lr, "3.weight": lr / m, "3.bias": lr,
                     "5.weight": lr / m, "5.bias": lr, "7.weight": lr, "7.bias": lr},
            "sgd": {"1.weight": lr * m, "1.bias": lr * m, "3.weight": lr, "3.bias": lr * m,
                    "5.weight": lr, "5.bias": lr * m, "7.weight": lr * m, "7.bias": lr},
        }[optimizer]  # fmt: skip
        named = dict(model.named_parameters())
        assert {n: got[id(p)] for n, p in named.items()} == pytest.approx(hand)
        assert sum(len(g["params"]) for g in opt.param_groups) == len(named)


def test_param_group_names_say_which_kinds_they_hold():
    plan = plan_widths(mlp, width=128, base_width=64, optimizer="adam")
    groups = param_groups(mlp(width=128), plan, 1.0)
    assert [(g["name"], g["lr"]) for g in groups] == [("input+output+fixed", 1.0), ("hidden", 0.5)]


def test_readout_multiplier_scales_the_logits_by_one_over_m():
    torch.manual_seed(0)
    model = mlp(width=256, in_shape=(8,), n_classes=3)
    x = torch.randn(5, 8)
    before = model(x)
    plan = plan_widths(mlp, width=256, base_width=64, in_shape=(8,), n_classes=3)
    apply_readout(model, plan)
    bias = model[5].bias
    assert torch.allclose(model(x) - bias, (before - bias) / 4, atol=1e-6)


def test_a_user_factory_with_its_own_layer_names():
    class Net(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.embed = nn.Linear(10, width)
            self.body = nn.Linear(width, 2 * width)
            self.head = nn.Linear(2 * width, 4, bias=False)

    plan = plan_widths(Net, width=128, base_width=32, optimizer="adam")
    rows = _rows(plan)
    assert rows["body.weight"] == ("hidden", 4.0, 4.0, 0.25)
    assert rows["head.weight"][0] == "output" and plan.readout == "head"


@pytest.mark.parametrize(
    "call, words",
    [
        (
            lambda: plan_widths(mlp, width=64, base_width=64, parametrization="ntk"),
            "parametrization",
        ),
        (lambda: plan_widths(mlp, width=64, base_width=64, optimizer="rmsprop"), "optimizer"),
        (lambda: plan_widths(mlp, width=0, base_width=64), "Widths must be"),
        (lambda: mlp(width=8, depth=0), "depth"),
    ],
)
def test_bad_input_is_one_config_error_line(call, words):
    with pytest.raises(ConfigError) as e:
        call()
    assert words in str(e.value) and "\n" not in str(e.value)


def test_optimizer_must_match_the_plan():
    plan = plan_widths(mlp, width=128, base_width=64, optimizer="adam")
    with pytest.raises(ConfigError, match="made for adam"):
        width_optimizer(mlp(width=128), plan, "sgd", 0.1)
