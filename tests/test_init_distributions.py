"""Every registered scheme, drawn >= 100k times: mean, std and a KS test against its target.

The test is parametrized over the whole registry, so a new scheme without a checker fails.
"""

from __future__ import annotations

import fnmatch
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import initlab
import test_critical_schemes as critical_checks
from initlab.initializers.registry import names
from initlab.models.residual import residual_mlp

FAN_OUT, FAN_IN = 400, 250  # a Linear(250, 400): 100,000 weights
N = FAN_OUT * FAN_IN
KS_P = 1e-4


def draw(spec, layer=None, seed=0):
    layer = layer or nn.Linear(FAN_IN, FAN_OUT)
    initlab.init_(layer, spec, generator=torch.Generator().manual_seed(seed))
    return layer.weight.detach().double().numpy().ravel()


def check_moments(x, mean, std):
    """Sample mean and std within ~5 standard errors (std's SE uses normal kurtosis 3)."""
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / math.sqrt(n) + 1e-12, (x.mean(), mean)
    assert abs(x.std() - std) < 5 * std / math.sqrt(2 * n) + 1e-12, (x.std(), std)


def check_ks(x, dist):
    p = stats.kstest(x, dist.cdf).pvalue
    assert p > KS_P, f"KS p-value {p:.2g}"


def normal_case(std, spec):
    x = draw(spec)
    check_moments(x, 0.0, std)
    check_ks(x, stats.norm(0, std))


def uniform_case(limit, spec):
    x = draw(spec)
    check_moments(x, 0.0, limit / math.sqrt(3))
    check_ks(x, stats.uniform(-limit, 2 * limit))
    assert np.abs(x).max() <= limit


def trunc_case(std, spec):
    """+-2 std truncated normal whose realized std is ``std`` (variance corrected)."""
    x = draw(spec)
    scale = std / stats.truncnorm(-2, 2).std()
    check_moments(x, 0.0, std)
    check_ks(x, stats.truncnorm(-2, 2, loc=0, scale=scale))


def constant_case(value, spec):
    x = draw(spec)
    assert np.all(x == value)


AVG = (FAN_IN + FAN_OUT) / 2


def check_orthogonal():
    for shape in [(400, 250), (250, 400)]:
        layer = nn.Linear(shape[1], shape[0])
        initlab.init_(layer, "orthogonal:gain=1.0", generator=torch.Generator().manual_seed(0))
        w = layer.weight.detach().double()
        gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
        assert torch.allclose(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5)
    w = draw("orthogonal:gain=2")
    assert abs(w.std() - 2 / math.sqrt(400)) < 1e-3


def check_sparse():
    spec = "sparse:sparsity=0.3,std=0.05"
    x = draw(spec).reshape(FAN_OUT, FAN_IN)
    zeros_per_col = (x == 0).sum(axis=0)
    assert np.all(zeros_per_col == math.ceil(0.3 * FAN_OUT))
    nonzero = x[x != 0]
    check_ks(nonzero, stats.norm(0, 0.05))
    assert np.array_equal(draw(spec, seed=3), draw(spec, seed=3))
    assert not np.array_equal(draw(spec, seed=3), draw(spec, seed=4))


def check_identity():
    x = draw("identity").reshape(FAN_OUT, FAN_IN)
    assert np.array_equal(x, np.eye(FAN_OUT, FAN_IN))
    conv = nn.Conv2d(8, 8, 3)
    initlab.init_(conv, "identity")
    y = conv(torch.randn(1, 8, 7, 7, generator=torch.Generator().manual_seed(1)))
    assert y.shape == (1, 8, 5, 5)


def check_torch_default():
    # U(+-1/sqrt(fan_in)), the surprise: a third of LeCun's variance
    uniform_case(1 / math.sqrt(FAN_IN), "torch_default")


def check_lsuv():
    # data-driven: no target distribution; the check is the defining property on data
    layer = nn.Linear(FAN_IN, FAN_OUT)
    x = torch.randn(2048, FAN_IN, generator=torch.Generator().manual_seed(1)) * 3 + 1
    report = initlab.init_(layer, "lsuv", data=x, generator=torch.Generator().manual_seed(0))
    assert report.extra["lsuv"][0]["converged"]
    with torch.no_grad():
        assert abs(float(layer(x).std()) - 1) <= 0.05
    w = layer.weight.detach().double()  # still orthogonal directions, one common scale
    gram = w.T @ w
    assert torch.allclose(
        gram / gram.diagonal().mean(), torch.eye(FAN_IN, dtype=w.dtype), atol=1e-5
    )


def check_dbn():
    # data-driven: trained weights from the generator, reproducible, not the N(0, 0.01) start
    x = (torch.rand(200, 30, generator=torch.Generator().manual_seed(1)) < 0.3).float()

    def run(seed):
        net = nn.Sequential(nn.Linear(30, 20), nn.Sigmoid(), nn.Linear(20, 5))
        spec = "dbn:epochs=3,batch_size=20,lr=0.5,progress=false"
        initlab.init_(net, spec, data=x, generator=torch.Generator().manual_seed(seed))
        return net[0].weight.detach().double().numpy()

    a, b, c = run(0), run(0), run(1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.std() - 0.01) > 0.01  # moved far from the N(0, 0.01^2) start


def _pooled(model, pattern):
    parts = [p.detach().double().numpy().ravel() for n, p in model.named_parameters()
             if fnmatch.fnmatchcase(n, pattern)]  # fmt: skip
    return np.concatenate(parts)


class _ThreeLayerBlock(nn.Module):
    """x + fc3(relu(fc2(relu(fc1(x))))): a branch of m = 3 layers."""

    def __init__(self, width):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (nn.Linear(width, width) for _ in range(3))

    def forward(self, x):
        return x + self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def check_fixup():
    # L = 4 branches of m = 3 layers: the first two N(0, 2/fan_in) x L^(-1/(2m-2)) = 4^(-1/4)
    model = nn.Sequential(*(_ThreeLayerBlock(FAN_IN) for _ in range(4)), nn.Linear(FAN_IN, 10))
    initlab.init_(model, "fixup", generator=torch.Generator().manual_seed(0))
    std = math.sqrt(2 / FAN_IN) * 4 ** (-1 / 4)
    for layer in ("fc1", "fc2"):
        x = _pooled(model, f"*.{layer}.weight")
        check_moments(x, 0.0, std)
        check_ks(x, stats.norm(0, std))
    assert np.all(_pooled(model, "*.fc3.weight") == 0) and np.all(_pooled(model, "4.*") == 0)
    assert np.all(_pooled(model, "*.bias") == 0)


def check_zero_last_gamma():
    model = residual_mlp(4, FAN_IN, norm="batchnorm")
    initlab.init_(model, "zero_last_gamma", generator=torch.Generator().manual_seed(0))
    x = _pooled(model, "*.fc*.weight")
    check_moments(x, 0.0, math.sqrt(2 / FAN_IN))
    check_ks(x, stats.norm(0, math.sqrt(2 / FAN_IN)))
    assert np.all(_pooled(model, "*.norm.weight") == 0)


def check_skipinit():
    model = residual_mlp(4, FAN_IN, gate=True)
    initlab.init_(model, "skipinit:base=lecun_normal", generator=torch.Generator().manual_seed(0))
    x = _pooled(model, "*.fc*.weight")
    check_moments(x, 0.0, math.sqrt(1 / FAN_IN))
    check_ks(x, stats.norm(0, math.sqrt(1 / FAN_IN)))
    assert np.all(_pooled(model, "*.gate") == 0)


def check_gpt2_residual():
    model = residual_mlp(4, FAN_IN, in_features=30)  # 4 branches: n_layers = 2
    initlab.init_(model, "gpt2_residual", generator=torch.Generator().manual_seed(0))
    x = np.concatenate([_pooled(model, "*.fc1.weight"), _pooled(model, "stem.weight")])
    check_moments(x, 0.0, 0.02)
    check_ks(x, stats.norm(0, 0.02))
    x = _pooled(model, "*.fc2.weight")
    check_moments(x, 0.0, 0.02 / math.sqrt(4))
    check_ks(x, stats.norm(0, 0.02 / math.sqrt(4)))


def check_embedding_normal():
    normal_case(1 / math.sqrt(FAN_IN), "embedding_normal")  # d_model = dim 1 of the table
    normal_case(0.02, "embedding_normal:std=0.02")


CHECKS = {
    "zeros": lambda: constant_case(0.0, "zeros"),
    "ones": lambda: constant_case(1.0, "ones"),
    "constant": lambda: constant_case(0.25, "constant:value=0.25"),
    "uniform": lambda: uniform_case(0.3, "uniform:a=-0.3,b=0.3"),
    "normal": lambda: normal_case(0.01, "normal:std=0.01"),
    "trunc_normal": lambda: trunc_case(0.5, "trunc_normal:std=0.5"),
    # Keras' names with Keras' defaults: N(0, 0.05^2), U(-0.05, 0.05), and a +-2 stddev
    # truncated normal that is not variance corrected (realized std 0.8796 * 0.05)
    "random_normal": lambda: normal_case(0.05, "random_normal"),
    "random_uniform": lambda: uniform_case(0.05, "random_uniform"),
    "truncated_normal": lambda: trunc_case(0.05 * stats.truncnorm(-2, 2).std(), "truncated_normal"),
    "he_normal": lambda: normal_case(math.sqrt(2 / FAN_IN), "he_normal"),
    "he_uniform": lambda: uniform_case(math.sqrt(6 / FAN_IN), "kaiming_uniform"),
    "xavier_normal": lambda: normal_case(math.sqrt(1 / AVG), "glorot_normal"),
    "xavier_uniform": lambda: uniform_case(math.sqrt(3 / AVG), "xavier_uniform"),
    "lecun_normal": lambda: normal_case(math.sqrt(1 / FAN_IN), "lecun_normal"),
    "lecun_uniform": lambda: uniform_case(math.sqrt(3 / FAN_IN), "lecun_uniform"),
    "variance_scaling": lambda: trunc_case(
        math.sqrt(2 / FAN_OUT),
        "variance_scaling:scale=2,mode=fan_out,distribution=truncated_normal",
    ),
    # a lone Linear has no activation after it: auto is LeCun normal
    "auto": lambda: normal_case(math.sqrt(1 / FAN_IN), "auto"),
    "orthogonal": check_orthogonal,
    "sparse": check_sparse,
    "identity": check_identity,
    "torch_default": check_torch_default,
    "lsuv": check_lsuv,
    "dbn": check_dbn,
    "fixup": check_fixup,
    "zero_last_gamma": check_zero_last_gamma,
    "skipinit": check_skipinit,
    "gpt2_residual": check_gpt2_residual,
    "embedding_normal": check_embedding_normal,
    # the edge-of-chaos schemes: their own KS / orthogonality checks
    "critical": critical_checks.test_critical_weights_are_gaussian_at_the_critical_variance,
    "delta_orthogonal": critical_checks.test_delta_orthogonal_is_orthogonal_at_the_centre_per_group,
}


@pytest.mark.parametrize("name", names())
def test_every_registered_scheme_draws_its_target_distribution(name):
    assert name in CHECKS, f"no distribution check for registered scheme {name!r}: add one"
    CHECKS[name]()


@pytest.mark.parametrize(
    "spec, std",
    [
        ("he_normal:distribution=truncated_normal", math.sqrt(2 / FAN_IN)),
        ("xavier_normal:distribution=truncated_normal", math.sqrt(1 / AVG)),
        ("lecun_normal:distribution=truncated_normal", math.sqrt(1 / FAN_IN)),
        ("auto:distribution=truncated_normal", math.sqrt(1 / FAN_IN)),
    ],
)
def test_keras_convention_truncated_variants(spec, std):
    trunc_case(std, spec)


def test_uniform_variants_and_untruncated_alias():
    uniform_case(math.sqrt(3 * 2 / FAN_IN), "variance_scaling:scale=2,distribution=uniform")
    normal_case(math.sqrt(1 / AVG), "variance_scaling:mode=fan_avg,distribution=untruncated_normal")


def test_he_negative_slope_matches_torch_gain():
    slope = 0.2
    std = torch.nn.init.calculate_gain("leaky_relu", slope) / math.sqrt(FAN_IN)
    normal_case(std, f"he_normal:negative_slope={slope}")


def test_trunc_normal_correction_hits_target_std_and_torch_does_not():
    x = draw("trunc_normal:std=1.0")
    assert abs(x.std() - 1.0) / 1.0 < 0.02
    x = draw("trunc_normal:std=1.0,correct_variance=false")
    assert abs(x.std() - 0.87962566) < 0.01
    # torch's trunc_normal_ takes absolute bounds and never corrects the variance
    t = torch.empty(N)
    torch.nn.init.trunc_normal_(
        t, std=1.0, a=-2.0, b=2.0, generator=torch.Generator().manual_seed(0)
    )
    assert abs(float(t.std()) - 1.0) > 0.1
    assert abs(float(t.std()) - 0.87962566) < 0.01
