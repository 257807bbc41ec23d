"""The `critical` and `delta_orthogonal` schemes: distributions, orthogonality, the isometry
of delta-orthogonal at gain 1, and one-line errors."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

import initlab
from initlab.errors import InitSpecError
from initlab.initializers.registry import LayerContext, get
from initlab.theory import critical_point


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tanh_mlp(width: int = 400, depth: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def test_critical_weights_are_gaussian_at_the_critical_variance():
    model = _tanh_mlp()
    report = initlab.init_(model, "critical:sigma_b2=0.05", generator=_gen())
    sw2 = critical_point("tanh", sigma_b2=0.05).sigma_w2
    w = model[2].weight.detach().double().flatten()
    std = math.sqrt(sw2 / 400)
    assert stats.kstest((w / std).numpy(), "norm").pvalue > 0.01
    assert float(w.std()) == pytest.approx(std, rel=0.01)
    b = torch.cat([model[i].bias.detach() for i in (0, 2, 4)])
    assert float(b.std()) == pytest.approx(math.sqrt(0.05), rel=0.1)
    assert stats.kstest((b / math.sqrt(0.05)).numpy(), "norm").pvalue > 0.01
    # the head is followed by no activation: linear, sigma_w^2 = 1
    assert report.row("6.weight").target_std == pytest.approx(1 / math.sqrt(400))
    assert report.row("6.weight").activation == "none"


def test_critical_is_he_for_relu_and_lecun_for_tanh_without_bias():
    ctx = LayerContext(fan_in=100, fan_out=100, shape=(100, 100), activation="relu")
    assert get("critical").target_std(ctx) == pytest.approx(get("he_normal").target_std(ctx))
    ctx = LayerContext(fan_in=100, fan_out=100, shape=(100, 100), activation="tanh")
    assert get("critical").target_std(ctx) == pytest.approx(get("lecun_normal").target_std(ctx))


def test_q_star_option_sets_both_variances():
    model = _tanh_mlp(200, 2)
    initlab.init_(model, "critical:q_star=0.5", generator=_gen(1))
    p = critical_point("tanh", q_star=0.5)
    w = model[2].weight.detach().double()
    assert float(w.pow(2).mean() * 200) == pytest.approx(p.sigma_w2, rel=0.02)
    assert float(model[0].bias.detach().pow(2).mean()) == pytest.approx(p.sigma_b2, rel=0.3)


def test_critical_orthogonal_is_a_scaled_orthogonal_matrix():
    model = _tanh_mlp(160, 2)
    initlab.init_(model, "critical:distribution=orthogonal,sigma_b2=0.0001", generator=_gen(2))
    sw2 = critical_point("tanh", sigma_b2=1e-4).sigma_w2
    w = model[2].weight.detach().double()
    assert torch.allclose(w @ w.T, sw2 * torch.eye(160, dtype=torch.float64), atol=1e-5)


def test_delta_orthogonal_is_orthogonal_at_the_centre_per_group():
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=2)
    initlab.init_(conv, "delta_orthogonal", generator=_gen(3))
    w = conv.weight.detach().double()
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1, 1] = False
    assert float(w[:, :, mask].abs().max()) == 0.0
    for g in range(2):
        block = w[4 * g : 4 * (g + 1), :, 1, 1]
        assert torch.allclose(block @ block.T, torch.eye(4, dtype=torch.float64), atol=1e-6)
    # per group: the two groups' blocks are independent draws
    assert not torch.allclose(w[:4, :, 1, 1], w[4:, :, 1, 1])


def test_delta_orthogonal_at_gain_one_is_an_identity_like_map():
    model = nn.Sequential(*[nn.Conv2d(16, 16, 3, padding=1, bias=False) for _ in range(20)])
    initlab.init_(model, "delta_orthogonal", generator=_gen(4))
    x = torch.randn(2, 16, 7, 7, generator=_gen(5))
    with torch.no_grad():
        y = model(x)
        # every pixel is rotated by the same orthogonal matrix: norms are kept pixel by pixel
        assert torch.allclose(y.norm(dim=1), x.norm(dim=1), rtol=1e-4)
        x2 = x.clone()
        x2[:, :, 3, 3] += 1.0
        changed = (model(x2) - y).abs().amax(dim=(0, 1)) > 1e-6
    assert changed.sum() == 1 and changed[3, 3]


def test_delta_orthogonal_kernel_distribution_of_the_centre():
    w = get("delta_orthogonal:gain=2").sample(
        (64, 64, 3, 3), LayerContext(64 * 9, 64 * 9, (64, 64, 3, 3)), _gen(6), "cpu"
    )
    centre = w[:, :, 1, 1].double()
    # entries of a Haar orthogonal matrix times gain: about N(0, gain^2 / n)
    assert stats.kstest((centre.flatten() * 8 / 2).numpy(), "norm").pvalue > 0.001
    assert float(w.std()) == pytest.approx(get("delta_orthogonal:gain=2").target_std(
        LayerContext(64 * 9, 64 * 9, (64, 64, 3, 3))), rel=0.02)  # fmt: skip


def test_bad_options_are_one_line():
    with pytest.raises(InitSpecError, match="Did you mean 'orthogonal'"):
        get("critical:distribution=orthgonal")
    with pytest.raises(InitSpecError, match="not both"):
        get("critical:sigma_b2=0.1,q_star=1")
    with pytest.raises(InitSpecError, match="must be > 0"):
        get("delta_orthogonal:gain=0")
    with pytest.raises(InitSpecError, match="2-d"):
        get("delta_orthogonal").sample((4,), LayerContext(4, 4, (4,)), _gen(), "cpu")
