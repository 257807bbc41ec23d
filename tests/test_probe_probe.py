"""probe(): layers in call order, numbers against PyTorch run by hand, a model left untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.errors import ConfigError
from initlab.probe import probe


def _mlp(gen, act=nn.Tanh) -> nn.Sequential:
    model = nn.Sequential(nn.Linear(6, 12), act(), nn.Linear(12, 12), act(), nn.Linear(12, 3))
    initlab.init_(model, "auto", generator=gen)
    return model


def _outputs(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    outs = []
    with torch.no_grad():
        for m in model:
            x = m(x)
            outs.append(x)
    return outs


def _no_hooks(model: nn.Module) -> bool:
    for m in model.modules():
        if m._forward_hooks or m._forward_pre_hooks:
            return False
    return all(not getattr(p, "_post_accumulate_grad_hooks", None) for p in model.parameters())


def test_layers_in_call_order_with_kinds():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 2)  # declared first, called last
            self.conv = nn.Conv1d(1, 3, 3, padding=1)
            self.act = nn.GELU()
            self.skip = nn.Identity()

        def forward(self, x):
            h = self.act(self.conv(x.unsqueeze(1))).mean(1)
            return self.head(F.relu(self.skip(h)))  # F.relu: named after the leaf before it

    with torch.random.fork_rng():  # the module's own init draws from the global generator
        torch.manual_seed(0)
        net = Net()
    report = probe(net, torch.randn(8, 4, generator=torch.Generator().manual_seed(0)))
    assert [(x.name, x.kind) for x in report.layers] == [
        ("conv", "conv"), ("act", "activation"), ("skip.relu", "activation"), ("head", "linear"),
    ]  # fmt: skip
    assert report.layer("act").activation == "gelu"
    assert [x.index for x in report.layers] == [0, 1, 2, 3]
    relu = report.layer("skip.relu")
    assert relu.activation == "relu" and relu.dead_elements > 0 and relu.min == 0.0


def test_stats_match_pytorch_over_several_batches(gen):
    model = _mlp(gen)
    x = torch.randn(90, 6, generator=gen)
    # edges exactly representable in binary, so numpy and torch.histc bin alike
    report = probe(model, x, batches=3, bins=16, ranges={"linear": (-4.0, 4.0)})
    assert report.record.batches == 3 and report.record.samples == 90
    for layer, y in zip(report.layers, _outputs(model, x), strict=True):
        y64 = y.double()
        assert layer.count == y.numel() and layer.units == y.shape[1]
        assert layer.mean == pytest.approx(float(y64.mean()), abs=1e-7)
        assert layer.std == pytest.approx(float(y64.std(correction=0)), rel=1e-5)
        assert (layer.min, layer.max) == pytest.approx((float(y.min()), float(y.max())))
        h = layer.histogram
        expected, _ = np.histogram(y.numpy(), bins=16, range=(h.lo, h.hi))
        assert h.counts == expected.tolist()
        assert h.underflow == int((y < h.lo).sum()) and h.overflow == int((y > h.hi).sum())
        assert h.total == y.numel()
    tanh = report.layer("1").histogram
    assert (tanh.lo, tanh.hi) == (-1.0, 1.0)
    # unbounded outputs: range fixed from the first batch, later values may fall outside
    lin = probe(model, x, batches=3).layer("0").histogram
    first = _outputs(model, x[:30])[0]
    assert lin.lo < float(first.min()) and lin.hi > float(first.max())


def test_gradients_match_autograd_and_model_is_left_as_it_was(gen):
    model = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 1))
    initlab.init_(model, "he_normal", generator=gen)
    x, y = torch.randn(40, 5, generator=gen), torch.randn(40, 1, generator=gen)
    running = model[1].running_mean.clone()
    model[3].weight.grad = torch.full_like(model[3].weight, 7.0)  # a user's pending grad
    report = probe(model, x, targets=y, loss_fn=F.mse_loss)
    # probe restored the pending grad, the BatchNorm buffers, and removed every hook
    assert torch.equal(model[3].weight.grad, torch.full_like(model[3].weight, 7.0))
    assert torch.equal(model[1].running_mean, running)
    assert _no_hooks(model)

    # oracle: the same forward/backward by hand, retaining the layer outputs' grads
    ref = model
    outs, h = [], x
    for m in ref:
        h = m(h)
        h.retain_grad()
        outs.append(h)
    for p in ref.parameters():
        p.grad = None
    loss = F.mse_loss(h, y)
    loss.backward()
    assert report.record.loss == pytest.approx(loss.item())
    listed = {"0": outs[0], "2": outs[2], "3": outs[3]}  # BatchNorm is not a "layer"
    for name, out in listed.items():
        layer = report.layer(name)
        assert layer.grad_std == pytest.approx(float(out.grad.double().std(correction=0)), rel=1e-5)
        assert layer.grad_norm == pytest.approx(float(out.grad.norm()), rel=1e-5)
    grads = {g.name: g for g in report.weight_grads}
    assert list(grads) == ["0.weight", "3.weight"]
    assert grads["3.weight"].norm == pytest.approx(float(ref[3].weight.grad.norm()), rel=1e-5)
    assert grads["0.weight"].shape == [7, 5]


def test_hooks_removed_when_forward_raises(gen):
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            self.act(self.fc(x))
            raise RuntimeError("boom")

    model = Boom()
    with pytest.raises(RuntimeError, match="boom"):
        probe(model, torch.randn(4, 3, generator=gen))
    assert _no_hooks(model)


def test_iterable_of_batches_with_targets(gen):
    model = _mlp(gen)
    data = [
        (torch.randn(10, 6, generator=gen), torch.randn(10, 3, generator=gen)) for _ in range(5)
    ]
    report = probe(model, data, loss_fn=F.mse_loss, batches=2)
    assert report.record.batches == 2 and report.record.samples == 20
    assert all(x.grad_std is not None for x in report.layers)


def test_ranges_by_name_activation_and_kind(gen):
    model = _mlp(gen)
    x = torch.randn(50, 6, generator=gen)
    report = probe(model, x, ranges={"0": (-0.5, 0.5), "tanh": (-0.1, 0.1), "linear": (-9, 9)})
    assert (report.layer("0").histogram.lo, report.layer("0").histogram.hi) == (-0.5, 0.5)
    assert report.layer("3").histogram.hi == 0.1
    assert report.layer("4").histogram.lo == -9
    h = report.layer("0").histogram
    assert h.underflow + h.overflow > 0 and h.total == 50 * 12
    everywhere = probe(model, x, ranges=(-2.0, 2.0))
    assert {(x.histogram.lo, x.histogram.hi) for x in everywhere.layers} == {(-2.0, 2.0)}


def test_prediction_chain_stops_at_functional_ops(gen):
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.act, self.b = nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8)

        def forward(self, x):
            h = self.act(self.a(x))
            return self.b(h + x)  # the residual add breaks the plain chain

    report = probe(Residual(), torch.randn(16, 8, generator=gen))
    assert report.layer("act").predicted_var is not None
    assert report.layer("b").predicted_var is None
    assert any("prediction stops at 'b'" in n for n in report.notes)


def test_bad_arguments_are_one_line_config_errors(gen):
    model = _mlp(gen)
    x = torch.randn(4, 6, generator=gen)
    with pytest.raises(ConfigError, match="loss_fn"):
        probe(model, x, targets=torch.zeros(4, 3))
    with pytest.raises(ConfigError, match="batches"):
        probe(model, x, batches=0)
    with pytest.raises(ConfigError, match="batches=5"):
        probe(model, x, batches=5)
    with pytest.raises(ConfigError, match="bins"):
        probe(model, x, bins=0)
    with pytest.raises(ConfigError, match="no elementwise activation"):
        probe(nn.Sequential(nn.Flatten()), x)
    with pytest.raises(ConfigError, match="empty"):
        probe(model, [])


def test_report_prints_table_and_diagnosis(gen, capsys):
    report = probe(_mlp(gen), torch.randn(32, 6, generator=gen))
    report.print()
    out = capsys.readouterr().out
    assert "initlab probe" in out and "no warning" in out
    assert "ProbeReport(5 layers, 32 samples" in repr(report)
