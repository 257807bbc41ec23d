"""Models from arch specs: mlp, cnn and user factories, and their one-line errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from initlab.errors import InitSpecError
from initlab.models import build, canonical_arch


def linears(model):
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def test_mlp_width_x_depth():
    model = build("mlp:100x4", activation="relu", in_shape=(1, 28, 28), n_classes=10)
    assert linears(model) == [(784, 100), (100, 100), (100, 100), (100, 100), (100, 10)]
    assert sum(isinstance(m, nn.ReLU) for m in model) == 4
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_mlp_widths_options_and_activation():
    model = build("mlp:256,256", activation="tanh", in_shape=(20,), n_classes=3, bias=False)
    assert linears(model) == [(20, 256), (256, 256), (256, 3)]
    assert all(m.bias is None for m in model if isinstance(m, nn.Linear))
    assert sum(isinstance(m, nn.Tanh) for m in model) == 2
    model = build("mlp:64,32x2", activation="leaky_relu:negative_slope=0.2", in_shape=(5,),
                  n_classes=2, batchnorm=True, dropout=0.3)  # fmt: skip
    kinds = [type(m).__name__ for m in model]
    assert kinds[:5] == ["Flatten", "Linear", "BatchNorm1d", "LeakyReLU", "Dropout"]
    assert linears(model) == [(5, 64), (64, 32), (32, 32), (32, 2)]
    assert model[3].negative_slope == 0.2 and model[4].p == 0.3


def test_options_in_the_spec_take_precedence():
    model = build(
        "mlp:16,dropout=0.5,batchnorm=true", activation="relu", in_shape=(4,), n_classes=2
    )
    assert any(isinstance(m, nn.BatchNorm1d) for m in model)
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [0.5]


def test_cnn():
    model = build("cnn:32,64", activation="relu", in_shape=(1, 28, 28), n_classes=10)
    convs = [
        (m.in_channels, m.out_channels, m.kernel_size) for m in model if isinstance(m, nn.Conv2d)
    ]
    assert convs == [(1, 32, (3, 3)), (32, 64, (3, 3))]
    assert linears(model) == [(64 * 7 * 7, 10)]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    model = build("cnn:8,dense=16,kernel=5", activation="gelu", in_shape=(1, 8, 8), n_classes=10,
                  batchnorm=True, dropout=0.25)  # fmt: skip
    assert linears(model) == [(8 * 4 * 4, 16), (16, 10)]
    assert any(isinstance(m, nn.BatchNorm2d) for m in model)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_user_factory_gets_what_it_accepts():
    model = build("model_zoo.factories:tiny", activation="relu", in_shape=(1, 8, 8), n_classes=10)
    assert linears(model) == [(64, 8), (8, 10)]
    model = build("model_zoo.factories:tiny:width=3", activation="relu", in_shape=(4,), n_classes=2)
    assert linears(model) == [(4, 3), (3, 2)]


def test_canonical_arch():
    assert canonical_arch("mlp:100x2") == "mlp:100,100"
    assert canonical_arch("MLP:8,dropout=0.5") == "mlp:8,dropout=0.5"


@pytest.mark.parametrize(
    "arch, message",
    [
        ("mlpp:100", "Did you mean 'mlp'"),
        ("mlp", "gives no widths"),
        ("mlp:wide", "Bad width 'wide'"),
        ("mlp:0", "must be >= 1"),
        ("mlp:10,dropuot=0.5", "Did you mean 'dropout'"),
        ("mlp:10,dropout=1.0", r"outside \[0, 1\)"),
        ("mlp:10,bias=3", "must be a bool"),
        ("cnn:8,8,8,8,8", "down to nothing"),
        ("no_such_module_xyz.mod:fn", "Cannot import"),
        ("model_zoo.factories:nothing_here", "nothing_here"),
        ("model_zoo.factories:not_a_model", "not an nn.Module"),
        ("model_zoo.factories:tiny:depth=3", "rejected its arguments"),
    ],
)
def test_bad_arch_specs_are_one_line(arch, message):
    with pytest.raises(InitSpecError, match=message) as info:
        build(arch, activation="relu", in_shape=(1, 28, 28), n_classes=10)
    assert "\n" not in str(info.value)


def test_cnn_needs_images():
    with pytest.raises(InitSpecError, match="needs image input"):
        build("cnn:8", activation="relu", in_shape=(20,), n_classes=2)
