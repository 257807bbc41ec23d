"""initlab.init: the tensor-level API, against init_ (the same draw) and torch.nn.init (the
oracle), over every formula scheme of the registry."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initlab
from initlab import init
from initlab.errors import InitSpecError


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", init.SCHEMES)
def test_each_scheme_fills_like_init_does_on_a_linear_layer(name):
    layer = nn.Linear(96, 64, bias=False)
    initlab.init_(layer, name, generator=seeded(3))
    w = torch.full((64, 96), float("nan"))
    out = getattr(init, f"{name}_")(w, generator=seeded(3))
    assert out is w
    assert torch.equal(w, layer.weight.detach())


# (our function, torch's, keywords for torch's): PyTorch's own init functions as the oracle
TORCH = [
    ("xavier_uniform_", nn.init.xavier_uniform_, {}),
    ("xavier_normal_", nn.init.xavier_normal_, {}),
    ("he_normal_", nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
    ("he_uniform_", nn.init.kaiming_uniform_, {"nonlinearity": "relu"}),
    ("normal_", nn.init.normal_, {}),
    ("uniform_", nn.init.uniform_, {}),
    ("zeros_", nn.init.zeros_, {}),
    ("ones_", nn.init.ones_, {}),
]


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), TORCH, ids=[t[0] for t in TORCH])
def test_matches_torch_nn_init_with_the_same_generator(ours, theirs, kwargs):
    shape = (128, 64, 3)
    a = getattr(init, ours)(torch.empty(shape), generator=seeded(1))
    b = theirs(torch.empty(shape), **kwargs, **({} if "zeros" in ours or "ones" in ours
                                               else {"generator": seeded(1)}))  # fmt: skip
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_orthogonal_rows_and_gain():
    w = init.orthogonal_(torch.empty(64, 256), gain=2.0, generator=seeded())
    torch.testing.assert_close(w @ w.T, 4.0 * torch.eye(64), atol=1e-4, rtol=0)


def test_options_fans_and_activation():
    w = init.variance_scaling_(torch.empty(512, 256), scale=2.0, mode="fan_out",
                               generator=seeded())  # fmt: skip
    assert abs(float(w.std()) / math.sqrt(2 / 512) - 1) < 0.01
    w = init.lecun_normal_(torch.empty(512, 256), fan_in=1024, generator=seeded())
    assert abs(float(w.std()) / math.sqrt(1 / 1024) - 1) < 0.01
    w = init.auto_(torch.empty(512, 256), activation="relu", generator=seeded())
    assert abs(float(w.std()) / math.sqrt(2 / 256) - 1) < 0.01
    w = init.random_normal_(torch.empty(512, 256), stddev=0.1, generator=seeded())
    assert abs(float(w.std()) / 0.1 - 1) < 0.01


def test_dtype_device_and_no_grad():
    w = nn.Parameter(torch.empty(64, 32, dtype=torch.float64))
    init.kaiming_normal_(w, generator=seeded())
    assert w.dtype == torch.float64 and w.requires_grad and w.grad_fn is None
    f32 = init.kaiming_normal_(torch.empty(64, 32), generator=seeded())
    assert torch.equal(w.detach().float(), f32)


def test_default_generator_is_seeded_zero_and_the_global_rng_is_untouched():
    state = torch.random.get_rng_state()
    a = init.he_normal_(torch.empty(10, 10))
    b = init.he_normal_(torch.empty(10, 10), generator=seeded(0))
    assert torch.equal(a, b)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("scheme", ["lsuv", "fixup", "torch_default", "dbn"])
def test_model_level_schemes_say_to_use_init_(scheme):
    with pytest.raises(InitSpecError, match=r"initlab.init_\(model"):
        init.fill_(torch.empty(4, 4), scheme)


def test_unknown_option_is_one_line():
    with pytest.raises(InitSpecError) as e:
        init.normal_(torch.empty(3, 3), sd=0.1)
    assert "\n" not in str(e.value) and "std" in str(e.value)
