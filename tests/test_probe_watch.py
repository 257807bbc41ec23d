"""watch(): statistics every N steps during training, nothing in between, hooks always removed."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.errors import ConfigError
from initlab.probe import hooks as hooks_module
from initlab.probe import probe, watch
from initlab.results.probe_records import WatchHistory


def _setup(gen):
    model = nn.Sequential(
        nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1)
    )
    initlab.init_(model, "auto", generator=gen)
    x, y = torch.randn(64, 8, generator=gen), torch.randn(64, 1, generator=gen)
    return model, x, y


def _train(model, x, y, steps, opt):
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()


def _watched_training(model, x, y, steps: int, every: int):
    """SGD steps under ``watch(model, every)``: the watch and a copy of the model at each
    sampled step (the weights a probe oracle must see)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    snapshots = {}
    with watch(model, every=every) as w:
        for step in range(steps):
            if step % every == 0:
                snapshots[step] = copy.deepcopy(model)
            _train(model, x, y, 1, opt)
    return w, snapshots


def _hooked(model: nn.Module) -> bool:
    if any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()):
        return True
    return any(getattr(p, "_post_accumulate_grad_hooks", None) for p in model.parameters())


def test_samples_every_n_steps_and_matches_a_probe_at_those_weights(gen):
    model, x, y = _setup(gen)
    w, snapshots = _watched_training(model, x, y, steps=10, every=3)
    assert w.history.steps == [0, 3, 6, 9]
    assert not _hooked(model)
    for record in w.history.records:
        oracle = probe(snapshots[record.step], x, targets=y, loss_fn=F.mse_loss)
        for got, want in zip(record.layers, oracle.layers, strict=True):
            assert got.name == want.name
            assert got.std == pytest.approx(want.std, rel=1e-6)
            assert got.grad_std == pytest.approx(want.grad_std, rel=1e-5)
        assert [g.name for g in record.weight_grads] == ["0.weight", "2.weight", "4.weight"]
        norms = [g.norm for g in record.weight_grads]
        assert norms == pytest.approx([g.norm for g in oracle.weight_grads], rel=1e-5)
    steps, stds = w.history.series("1", "std")
    assert steps == [0, 3, 6, 9] and len(set(stds)) == 4  # training moved the weights


def test_nothing_is_computed_between_samples(gen, monkeypatch):
    calls = []
    original = hooks_module.fold_outputs

    def counting(items):  # a sampled step folds its layers' outputs together
        calls.extend(items)
        return original(items)

    monkeypatch.setattr(hooks_module, "fold_outputs", counting)
    model, x, y = _setup(gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, every=5):
        _train(model, x, y, 10, opt)
    assert len(calls) == 2 * 5  # steps 0 and 5, five layers each


def test_hooks_removed_when_the_body_raises(gen):
    model, x, _ = _setup(gen)
    with pytest.raises(ValueError, match="user error"), watch(model, every=1):
        model(x)
        raise ValueError("user error")
    assert not _hooked(model)


def test_history_is_plain_data_that_round_trips(gen):
    model, x, y = _setup(gen)
    with watch(model, every=2) as w:
        _train(model, x, y, 4, torch.optim.SGD(model.parameters(), lr=0.01))
    again = WatchHistory.from_dict(w.history.to_dict())
    assert again == w.history


def test_every_must_be_positive(gen):
    model, _, _ = _setup(gen)
    with pytest.raises(ConfigError, match="every"), watch(model, every=0):
        pass


def test_an_in_place_activation_does_not_change_what_watch_saw_before_it(gen):
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(inplace=True), nn.Linear(32, 1))
    initlab.init_(model, "he_normal", generator=gen)
    x = torch.randn(64, 8, generator=gen)
    oracle = probe(copy.deepcopy(model), x)  # measures each output the moment it is made
    with watch(model) as w:
        model(x).sum().backward()
    (record,) = w.history.records
    got, want = record.layers[0], oracle.layers[0]
    assert got.name == want.name == "0" and want.min < 0  # the Linear's output, before ReLU
    assert (got.min, got.std) == pytest.approx((want.min, want.std), rel=1e-6)


def test_functional_activations_are_seen_on_every_sampled_step(gen):
    # after the first sample watch attaches only the layer hooks, unless that sample saw an
    # activation called as a function: then later samples must still name and measure it
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 1)

        def forward(self, x):
            return self.fc2(torch.tanh(self.fc1(x)))

    model = Net()
    initlab.init_(model, "xavier_normal", generator=gen)
    x, y = torch.randn(64, 8, generator=gen), torch.randn(64, 1, generator=gen)
    w, snapshots = _watched_training(model, x, y, steps=5, every=2)
    assert w.history.steps == [0, 2, 4]
    for record in w.history.records:
        assert [x.name for x in record.layers] == ["fc1", "fc1.tanh", "fc2"]
        oracle = probe(snapshots[record.step], x, targets=y, loss_fn=F.mse_loss)
        assert record.layer("fc1.tanh").std == pytest.approx(oracle.layer("fc1.tanh").std)
        assert record.layer("fc1.tanh").saturation == oracle.layer("fc1.tanh").saturation
