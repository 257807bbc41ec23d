"""Issue 17: Keras' initializer names mean what Keras means, ``module:function`` archs with a
top-level module, and ``pretrain_dbn`` without a generator."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import initlab
from initlab.cli import main
from initlab.errors import InitSpecError
from initlab.initializers.registry import scheme_class
from initlab.models.mup import width_arch
from initlab.models.specs import build, canonical_arch, is_factory, parse_arch

pytestmark = pytest.mark.usefixtures("one_thread")

FAN_OUT, FAN_IN = 400, 250  # a Linear(250, 400): 100,000 weights
KS_P = 1e-4
KERAS_TRUNC = 0.87962566103423978  # std of a standard normal cut at +-2


def draw(spec, seed=0):
    layer = nn.Linear(FAN_IN, FAN_OUT)
    report = initlab.init_(layer, spec, generator=torch.Generator().manual_seed(seed))
    return layer.weight.detach().double().numpy().ravel(), report


def ks_p(x, dist):
    return stats.kstest(x, dist.cdf).pvalue


# ---- Keras names ------------------------------------------------------------------------


def test_random_normal_is_keras_default_n_0_005():
    x, report = draw("random_normal")
    assert x.size == 100_000
    assert abs(x.std() - 0.05) / 0.05 < 0.01
    assert abs(x.mean()) < 5 * 0.05 / math.sqrt(x.size)
    assert ks_p(x, stats.norm(0, 0.05)) > KS_P
    assert report.rows[0].target_std == pytest.approx(0.05)


def test_truncated_normal_is_keras_uncorrected_at_2_stddev():
    x, report = draw("truncated_normal")
    realized = 0.05 * KERAS_TRUNC  # 0.04398: Keras does not correct the variance
    assert abs(x.std() - realized) / realized < 0.01
    assert abs(x.std() - 0.05) > 0.005  # not the corrected trunc_normal
    assert np.abs(x).max() <= 0.1 and np.abs(x).max() > 0.099
    assert ks_p(x, stats.truncnorm(-2, 2, loc=0, scale=0.05)) > KS_P
    assert report.rows[0].target_std == pytest.approx(realized)


def test_random_uniform_is_keras_default_u_minus_005_005():
    x, _ = draw("random_uniform")
    assert x.min() >= -0.05 and x.max() <= 0.05
    assert x.min() < -0.0499 and x.max() > 0.0499
    std = 0.1 / math.sqrt(12)
    assert abs(x.std() - std) / std < 0.01
    assert ks_p(x, stats.uniform(-0.05, 0.1)) > KS_P


@pytest.mark.parametrize(
    "spec, dist",
    [
        ("random_normal:mean=0.5,stddev=0.1", stats.norm(0.5, 0.1)),
        ("truncated_normal:mean=-1,stddev=0.2", stats.truncnorm(-2, 2, loc=-1, scale=0.2)),
        ("random_uniform:minval=0,maxval=2", stats.uniform(0, 2)),
    ],
)
def test_keras_options_with_keras_names(spec, dist):
    x, _ = draw(spec, seed=3)
    assert abs(x.std() - dist.std()) / dist.std() < 0.01
    assert abs(x.mean() - dist.mean()) < 5 * dist.std() / math.sqrt(x.size)
    assert ks_p(x, dist) > KS_P
    lo, hi = dist.support()
    assert x.min() >= lo and x.max() <= hi


@pytest.mark.parametrize(
    "spec, words",
    [
        ("random_normal:std=0.1", "Did you mean 'stddev'"),
        ("truncated_normal:std=0.1", "Did you mean 'stddev'"),
        ("random_uniform:minval=0.1,maxval=0", "need minval < maxval"),
        ("random_normal:stddev=-1", "must be >= 0"),
    ],
)
def test_bad_keras_options_are_one_line(spec, words):
    with pytest.raises(InitSpecError, match=words) as info:
        initlab.get(spec)
    assert "\n" not in str(info.value)


def test_pytorch_style_schemes_are_unchanged():
    assert initlab.get("normal").std == 1.0
    assert (initlab.get("uniform").a, initlab.get("uniform").b) == (0.0, 1.0)
    x, _ = draw("trunc_normal:std=0.05")  # variance corrected: realized std is 0.05
    assert abs(x.std() - 0.05) / 0.05 < 0.01
    for keras, torch_style in [("random_normal", "normal"), ("truncated_normal", "trunc_normal"),
                               ("random_uniform", "uniform")]:  # fmt: skip
        assert scheme_class(keras) is not scheme_class(torch_style)


@pytest.mark.parametrize(
    "spec",
    ["random_normal", "random_normal:mean=0.5,stddev=0.1", "truncated_normal:stddev=0.2",
     "random_uniform", "random_uniform:minval=-1,maxval=3"],
)  # fmt: skip
def test_keras_config_round_trip(spec):
    scheme = initlab.get(spec)
    config = json.loads(json.dumps(scheme.to_config()))
    assert initlab.get(config) == scheme
    assert type(scheme).from_config(config) == scheme
    assert initlab.get(scheme.to_spec()) == scheme
    assert initlab.get(json.dumps(config)) == scheme


def test_keras_style_config_dicts():
    assert initlab.get({"name": "random_normal", "mean": 0.0, "stddev": 0.05}).to_config() == {
        "name": "random_normal", "mean": 0.0, "stddev": 0.05,
    }  # fmt: skip
    uniform = initlab.get({"name": "random_uniform", "minval": -0.1, "maxval": 0.1})
    assert uniform.to_spec() == "random_uniform:minval=-0.1,maxval=0.1"


# ---- module:function architectures --------------------------------------------------------

FACTORY = """
import math
from torch import nn

def make(in_shape=(4,), n_classes=3, width=8):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), width), nn.ReLU(),
                         nn.Linear(width, n_classes))

NOT_A_MODEL = 42
"""


@pytest.fixture
def mymodels(tmp_path, monkeypatch):
    """A top-level module ``mymodels`` (and a module shadowing the family name ``mlp``)."""
    (tmp_path / "mymodels.py").write_text(FACTORY)
    (tmp_path / "mlp.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("mymodels", "mlp"):
        sys.modules.pop(name, None)


def linears(model):
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def test_top_level_factory_through_python(mymodels):
    model = build("mymodels:make", activation="relu", in_shape=(1, 4, 4), n_classes=10)
    assert linears(model) == [(16, 8), (8, 10)]
    model = build("mymodels:make:width=3", activation="relu", in_shape=(5,), n_classes=2)
    assert linears(model) == [(5, 3), (3, 2)]
    spec = parse_arch("mymodels:make:width=3")
    assert spec.name == "mymodels:make" and spec.kwargs == {"width": 3}
    assert is_factory(spec.name) and not is_factory("mlp")
    assert canonical_arch("mymodels:make") == "mymodels:make"
    assert width_arch("mymodels:make", 64) == "mymodels:make:width=64"


def test_built_in_families_keep_priority(mymodels):
    # a module named mlp on sys.path does not shadow the built-in family
    assert linears(build("mlp:8", in_shape=(4,), n_classes=2)) == [(4, 8), (8, 2)]
    with pytest.raises(InitSpecError, match="Bad width 'make'"):
        build("mlp:make", in_shape=(4,), n_classes=2)


@pytest.mark.parametrize(
    "arch, words",
    [
        ("nosuch_module_kf17:make", "Cannot import module 'nosuch_module_kf17'"),
        ("mymodels:mak", "Did you mean 'make'"),
        ("mymodels:NOT_A_MODEL", "not a callable"),
        ("mpl:make", "Did you mean 'mlp'"),
        ("mpl:100x4", "Did you mean 'mlp'"),
        ("mymodelz", "factory 'module:function'"),
        ("mymodels:make:", "ends with ':'"),
    ],
)
def test_bad_factory_archs_are_one_line(mymodels, arch, words):
    with pytest.raises(InitSpecError, match=words) as info:
        build(arch, in_shape=(4,), n_classes=2)
    assert "\n" not in str(info.value)


TINY = ["--dataset", "digits", "--inits", "random_normal", "--seeds", "1", "--steps", "3",
        "--eval-every", "3", "--batch-size", "16", "--no-report", "--threads", "1"]  # fmt: skip


def test_top_level_factory_through_the_cli(mymodels, tmp_path, capsys):
    out = tmp_path / "run"
    main(["compare", "--arch", "mymodels:make:width=16", *TINY, "--out", str(out)])
    assert "random_normal" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["arch"] == "mymodels:make:width=16"
    assert (out / "summary.json").exists()
    main(["probe", "--model", "mymodels:make", "--input-shape", "4", "--batch", "16"])
    assert "initlab probe" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arch, words",
    [
        ("nosuch_module_kf17:make", "Cannot import module 'nosuch_module_kf17'"),
        ("mymodels:nothing_here", "nothing_here"),
    ],
)
def test_missing_module_or_function_through_the_cli(mymodels, run_cli, tmp_path, arch, words):
    code, _, err = run_cli(["compare", "--arch", arch, *TINY, "--out", str(tmp_path / "r")])
    assert code == 2
    assert words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ---- pretrain_dbn without a generator ------------------------------------------------------


def _dbn_net() -> nn.Sequential:
    # skip_init builds without touching the global RNG; init_ then draws from a seeded generator
    net = nn.Sequential(nn.utils.skip_init(nn.Linear, 30, 20), nn.Sigmoid(),
                        nn.utils.skip_init(nn.Linear, 20, 5))  # fmt: skip
    initlab.init_(net, "normal:std=0.01", generator=torch.Generator().manual_seed(0))
    return net


def _weights(net):
    return [p.detach().clone() for p in net.parameters()]


DATA = (torch.rand(120, 30, generator=torch.Generator().manual_seed(1)) < 0.3).float()


def test_pretrain_dbn_without_generator_is_reproducible_and_says_so():
    a, b = _dbn_net(), _dbn_net()
    report = initlab.pretrain_dbn(a, DATA, epochs=1)
    initlab.pretrain_dbn(b, DATA, epochs=1, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(b), strict=True))
    assert "no generator given: used torch.Generator().manual_seed(0)" in report.notes
    # the default is exactly a generator seeded 0, and an explicit one adds no note
    c, d = _dbn_net(), _dbn_net()
    explicit = initlab.pretrain_dbn(c, DATA, epochs=1, progress=False,
                                    generator=torch.Generator().manual_seed(0))  # fmt: skip
    initlab.pretrain_dbn(d, DATA, epochs=1, progress=False,
                         generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(c), strict=True))
    assert not torch.equal(a[0].weight, d[0].weight)
    assert not any("no generator given" in note for note in explicit.notes)
