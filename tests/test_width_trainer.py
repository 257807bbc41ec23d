"""Width runs train through the one stacked trainer: μP there equals plain PyTorch doing the
same thing by hand (readout pre-hook, per-parameter learning rates, the same batches)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initlab.data import load
from initlab.errors import ConfigError
from initlab.initializers import init_
from initlab.models.mup import apply_readout, mlp, plan_widths, width_arch
from initlab.models.stacked import StackedModel
from initlab.train import BatchOrder, Member, init_generator
from initlab.train.parametrize import Parametrization, width_optimizer
from initlab.train.schedules import get as get_schedule
from initlab.train.stack_spec import stack_spec
from initlab.train.trainer import StackRun

torch.set_num_threads(1)
ARCH = "initlab.models.mup:mlp:depth=2"
STEPS, BATCH, LR = 30, 32, 0.01


def _spec(data, parametrization, width, *, optimizer="adam", seeds=(0, 1), schedule=None):
    from initlab.train.controls import TrainControls

    controls = TrainControls(schedule=schedule) if schedule else None
    return stack_spec(
        [Member("he_normal", s) for s in seeds], data=data, arch=width_arch(ARCH, width),
        activation="relu", optimizer=optimizer, lr=LR, batch_size=BATCH, steps=STEPS,
        eval_every=None, target_loss=0.0, controls=controls,
        parametrization=Parametrization(parametrization, 16),
    )  # fmt: skip


def _plain_losses(data, width, seed, parametrization, optimizer, schedule=None):
    """The oracle: one plain model, μP by hand, batches from the same keyed order."""

    def factory(width):
        return mlp(width=width, depth=2, in_shape=data.in_shape, n_classes=data.n_classes)

    plan = plan_widths(factory, width=width, base_width=16, parametrization=parametrization,
                       optimizer=optimizer)  # fmt: skip
    model = factory(width)
    init_(model, "he_normal", generator=init_generator("he_normal", seed))
    apply_readout(model, plan)
    opt = width_optimizer(model, plan, optimizer, LR)
    mults = [g["lr_mult"] for g in opt.param_groups]
    rule = get_schedule(schedule or "constant")
    order = BatchOrder([seed], n=len(data.train), batch_size=BATCH)
    losses = []
    for t in range(STEPS):
        for g, m in zip(opt.param_groups, mults):
            g["lr"] = LR * rule.multiplier(t) * m
        idx = order.indices(t)[0]
        loss = F.cross_entropy(model(data.train.features(idx)), data.train.labels(idx))
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_mup_stack_equals_plain_pytorch_by_hand(optimizer):
    data = load("blobs")
    run = StackRun(_spec(data, "mup", 64, optimizer=optimizer, schedule="cosine"), data)
    assert run.stack.mode == "batched"  # the readout multiplier runs in the batched kernels
    records = run.run()
    for record in records:
        want = _plain_losses(data, 64, record.config.seed, "mup", optimizer, "cosine")
        got = record.metrics["train_loss"].values
        assert max(abs(a - b) for a, b in zip(got, want)) < 1e-5


def test_mup_changes_the_run_and_sp_at_base_width_equals_mup():
    data = load("blobs")
    mup = StackRun(_spec(data, "mup", 64), data).run()
    sp = StackRun(_spec(data, "sp", 64), data).run()
    assert mup[0].metrics["train_loss"].values != sp[0].metrics["train_loss"].values
    base_mup = StackRun(_spec(data, "mup", 16), data).run()
    base_sp = StackRun(_spec(data, "sp", 16), data).run()
    assert base_mup[0].metrics["train_loss"].values == base_sp[0].metrics["train_loss"].values


def test_a_seed_trained_alone_gets_the_same_numbers():
    data = load("blobs")
    both = StackRun(_spec(data, "mup", 64, seeds=(0, 1)), data).run()
    alone = StackRun(_spec(data, "mup", 64, seeds=(1,)), data).run()
    assert both[1].metrics["train_loss"].values == alone[0].metrics["train_loss"].values


def test_a_parametrization_needs_a_width_factory():
    data = load("blobs")
    with pytest.raises(ConfigError, match="width="):
        stack_spec([Member("he_normal", 0)], data=data, arch="mlp:16", activation="relu",
                   optimizer="adam", lr=LR, batch_size=BATCH, steps=2, eval_every=None,
                   target_loss=0.0, parametrization=Parametrization("mup", 16))  # fmt: skip
    with pytest.raises(ConfigError, match="parametrization"):
        Parametrization("mu", 16)


def test_models_with_hooks_do_not_run_in_batched_kernels():
    """Batched kernels never call modules, so a user's hook would be skipped: such a model
    runs where modules are called, and the hook takes effect."""
    models = [nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)) for _ in range(2)]
    for m in models:
        m[2].register_forward_pre_hook(lambda _m, args: (args[0] * 0.0,))
    stack = StackedModel(models, in_shape=(3,))
    assert stack.mode != "batched" and "hooks" in stack.unstackable_reason
    out = stack(torch.ones(1, 5, 3), train=False)
    want = torch.stack([m[2].bias.detach().expand(5, 2) for m in models])
    assert torch.equal(out.detach(), want)
