"""LSUV on real MNIST: forward call order (not declaration order), per-channel scaling,
mean centring, non-convergence warnings, determinism and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.data import load
from initlab.errors import InitSpecError
from initlab.initializers import LSUV


@pytest.fixture(scope="module")
def mnist():
    return load("mnist")


class Reversed(nn.Module):
    """Submodules declared in the reverse of the order forward uses them."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(128, 10)
        self.mid2 = nn.Linear(256, 128)
        self.mid1 = nn.Linear(256, 256)
        self.inp = nn.Linear(784, 256)

    def forward(self, x):
        x = torch.relu(self.inp(x.flatten(1)))
        x = torch.relu(self.mid1(x))
        x = torch.tanh(self.mid2(x))
        return self.out(x)


def output_stats(model, x):
    """Each weight layer's output, flattened to [samples, channels] (channels last)."""
    outs = {}

    def keep(name):
        def hook(m, i, o):
            axis = 1 if isinstance(m, nn.modules.conv._ConvNd) else o.dim() - 1
            outs[name] = o.detach().double().movedim(axis, -1).reshape(-1, o.shape[axis])

        return hook

    handles = [m.register_forward_hook(keep(n)) for n, m in model.named_modules()
               if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]  # fmt: skip
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return outs


def test_reversed_declaration_order_unit_std_on_fresh_data(mnist):
    calibration = mnist.train.features(slice(0, 2048))
    fresh = mnist.test.features(slice(0, 2048))
    labels = mnist.train.labels(slice(0, 2048))
    batches = [(calibration[i : i + 256], labels[i : i + 256]) for i in range(0, 2048, 256)]
    model = Reversed()
    report = initlab.init_(model, "lsuv", data=batches, generator=torch.Generator().manual_seed(0))
    layers = report.extra["lsuv"]
    assert [d["layer"] for d in layers] == ["inp", "mid1", "mid2", "out"]
    assert [d["call_index"] for d in layers] == [0, 1, 2, 3]
    assert all(d["converged"] and d["iterations"] >= 1 for d in layers)
    assert any("call #0 layer inp" in n for n in report.notes)
    stds = {name: float(y.std()) for name, y in output_stats(model, fresh).items()}
    print("fresh-data output std per layer:", stds)
    assert all(abs(s - 1) < 0.1 for s in stds.values()), stds

    # the same rescaling in declaration order (what the reference package does) misses
    naive = Reversed()
    initlab.init_(naive, "orthogonal", generator=torch.Generator().manual_seed(0))
    for name, module in naive.named_children():
        for _ in range(3):
            with torch.no_grad():
                module.weight /= output_stats(naive, calibration)[name].std()
    naive_stds = {n: float(y.std()) for n, y in output_stats(naive, fresh).items()}
    assert max(abs(s - 1) for s in naive_stds.values()) > 0.5, naive_stds


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.up = nn.ConvTranspose2d(8, 6, 3, groups=2)  # weight [in, out/groups, k, k]
        self.head = nn.Linear(6 * 28 * 28, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = torch.relu(self.up(x))
        return self.head(x.flatten(1))


@pytest.mark.parametrize("center", [False, True])
def test_per_channel_every_channel_std_within_tol_on_calibration_data(mnist, center):
    x = mnist.train.features(slice(0, 512))
    model = ConvNet()
    spec = f"lsuv:per_channel=true,tol=0.02,center={str(center).lower()}"
    report = initlab.init_(model, spec, data=x, generator=torch.Generator().manual_seed(1))
    assert all(d["converged"] for d in report.extra["lsuv"])
    for name, y in output_stats(model, x).items():
        ch_std = y.std(0, unbiased=False)
        assert float((ch_std - 1).abs().max()) <= 0.02, (name, ch_std)
        if center:
            assert float(y.mean(0).abs().max()) <= 0.02, name
    # without per_channel only the pooled std is 1: channels spread
    pooled = ConvNet()
    initlab.init_(pooled, "lsuv:tol=0.02", data=x, generator=torch.Generator().manual_seed(1))
    spread = output_stats(pooled, x)["conv"].std(0)
    assert float(spread.max() - spread.min()) > 0.1


def test_bias_that_scaling_cannot_fix_warns_and_center_fixes_it(mnist):
    x = mnist.train.features(slice(0, 512)).flatten(1)
    make = lambda: nn.Sequential(nn.Linear(784, 64), nn.Tanh(), nn.Linear(64, 10))  # noqa: E731
    # per-channel biases with std 1.7 > 1: dividing the weights can never reach std 1
    bias = "uniform:a=-3,b=3"
    report = initlab.init_(make(), "lsuv:max_iters=5", data=x, bias=bias,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    first = report.extra["lsuv"][0]
    assert not first["converged"] and first["iterations"] == 5
    assert any(n.startswith("WARNING lsuv: layer 0 did not converge") for n in report.notes)
    model = make()
    report = initlab.init_(model, "lsuv:center=true", data=x, bias=bias,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert all(d["converged"] for d in report.extra["lsuv"])
    assert report.row("0.bias").scheme == "lsuv:center=true"
    y = output_stats(model, x)["0"]
    assert abs(float(y.std()) - 1) <= 0.05 and float(y.mean(0).abs().max()) <= 0.05


def test_same_seed_identical_global_rng_untouched_and_modes_restored(mnist):
    x = mnist.train.features(slice(0, 256))
    models = [nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.BatchNorm1d(32),
                            nn.Dropout(0.5), nn.ReLU(), nn.Linear(32, 10)) for _ in range(3)]  # fmt: skip
    state = torch.random.get_rng_state()
    for model, seed in zip(models, (4, 4, 5)):
        initlab.init_(model, LSUV(batches=4), data=x, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(torch.random.get_rng_state(), state)  # dropout would draw if active
    for pa, pb in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(models[0][1].weight, models[2][1].weight)
    assert models[0].training and models[0][3].training
    assert float(models[0][2].running_mean.abs().max()) == 0  # batch-norm stats untouched


def test_skipped_layers_are_reported(mnist):
    class WithLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Linear(3, 3)
            self.rnn = nn.LSTM(28, 16, batch_first=True)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            out, _ = self.rnn(x.flatten(1, 2))
            return self.head(out[:, -1])

    x = mnist.train.features(slice(0, 128))
    model = WithLSTM()
    report = initlab.init_(model, "lsuv", data=x, generator=torch.Generator().manual_seed(0))
    skipped = dict(report.skipped)
    assert "not linear in its weight" in skipped["rnn.weight"]
    assert "not called" in skipped["unused.weight"]
    assert [d["layer"] for d in report.extra["lsuv"]] == ["head"]


def test_spec_options_and_errors():
    assert initlab.get("lsuv:tol=0.05,max_iters=10,per_channel=true,center=false") == LSUV(
        per_channel=True
    )
    model = nn.Sequential(nn.Linear(4, 3))
    for bad, match in [
        ("lsuv:tol=1.5", "tol must be in"),
        ("lsuv:max_iters=0", "max_iters"),
        ("lsuv:per_chanel=true", "Did you mean 'per_channel'"),
    ]:
        with pytest.raises(InitSpecError, match=match):
            initlab.get(bad)
    for data, match in [(None, "data="), (5, "tensor or an iterable"), ([], "no batches")]:
        with pytest.raises(InitSpecError, match=match) as err:
            initlab.init_(model, "lsuv", data=data, generator=torch.Generator())
        assert "\n" not in str(err.value)
    with pytest.raises(InitSpecError, match="data-driven"):
        initlab.init_(model, "normal", bias="lsuv", generator=torch.Generator())
