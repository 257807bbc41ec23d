"""Schedules, regularizers, dropout and batch norm in the stacked trainer against a plain
PyTorch loop doing the same step; early stopping and reduce-on-plateau on scripted metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.activations import from_module
from initlab.data import load
from initlab.errors import ConfigError
from initlab.models.specs import build
from initlab.train import BatchOrder, Member, dropout_generator, init_generator
from initlab.train import trainer as trainer_module
from initlab.train.controls import TrainControls
from initlab.train.early_stopping import EarlyStopping
from initlab.train.regularize import Regularization
from initlab.train.schedules import get as get_schedule
from initlab.train.stack_spec import stack_spec
from initlab.train.trainer import StackRun, train_members

BATCH, SEED = 32, 1
INITS = ["lecun_normal", "he_normal", "xavier_uniform"]


def stack_run(members, *, data, **settings) -> StackRun:
    """The trainer's StackRun for ``members`` with ``settings``, through the spec edge."""
    return StackRun(stack_spec(members, data=data, **settings), data)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return load("digits")


class KeyedDropout(nn.Module):
    """Dropout drawing its mask from one generator, as each member of a stack does."""

    def __init__(self, p: float, generator: torch.Generator):
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, x):
        if not self.training:
            return x
        mask = torch.empty(x.shape).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * mask.div_(1.0 - self.p)


NO_REG = Regularization()


def plain_run(data, init, *, arch, optimizer, lr, steps, reg=NO_REG, schedule="constant"):
    """One model, the textbook loop: penalties in the loss, decoupled decay by hand."""
    model = build(arch, activation="relu", in_shape=data.in_shape, n_classes=data.n_classes)
    initlab.init_(model, init, bias="zeros", generator=init_generator(init, SEED))
    masks = dropout_generator(init, SEED)  # one generator for all of a model's dropout layers
    for i, m in enumerate(model):
        if isinstance(m, nn.Dropout):
            model[i] = KeyedDropout(m.p, masks)
    acts = [m for m in model if from_module(m) is not None]
    chosen = [acts[i - 1] for i in (reg.activity_layers or range(1, len(acts) + 1))]
    captured: list[torch.Tensor] = []
    for m in chosen:
        m.register_forward_hook(lambda _m, _i, out: captured.append(out))
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    cls, settings = TORCH_OPTIMIZERS[optimizer]
    opt = cls(model.parameters(), lr=lr, **settings)
    sched = get_schedule(schedule)
    order = BatchOrder([SEED], n=len(data.train), batch_size=BATCH)
    losses = []
    for step in range(steps):
        idx = order.indices(step)[0]
        captured.clear()
        loss = F.cross_entropy(model(data.train.features(idx)), data.train.labels(idx))
        total = loss
        for w in weights:
            total = total + reg.l2 * w.pow(2).sum() + reg.l1 * w.abs().sum()
        for h in captured:
            h = h.flatten(1)
            total = total + reg.activity_l1 * h.abs().sum(1).mean()
            total = total + reg.activity_l2 * h.pow(2).sum(1).mean()
        step_lr = lr * sched.multiplier(step)
        for group in opt.param_groups:
            group["lr"] = step_lr
        opt.zero_grad()
        total.backward()
        with torch.no_grad():
            for w in weights:
                w.mul_(1.0 - step_lr * reg.weight_decay)
        opt.step()
        losses.append(loss.item())
    return losses, model


# What each initlab optimizer name means, written out against torch.optim directly.
TORCH_OPTIMIZERS = {
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {"weight_decay": 0.01}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adagrad": (torch.optim.Adagrad, {}),
}
CASES = {
    "l2": dict(reg=Regularization(l2=1e-3)),
    "l1": dict(reg=Regularization(l1=1e-4)),
    "decoupled-decay-adam": dict(reg=Regularization(weight_decay=0.5), optimizer="adam", lr=1e-3),
    "activity": dict(reg=Regularization(activity_l1=1e-4, activity_l2=1e-3, activity_layers=(2,))),
    "cosine-restarts-warmup": dict(schedule="cosine_restarts:first_decay_steps=20,warmup_steps=5"),
    "step-schedule": dict(schedule="step:step_size=15,gamma=0.5"),
    "dropout-per-layer": dict(arch="mlp:32,32,dropout=0.3,0.1"),
    # (SGD: the Linear biases before batch norm get a zero gradient up to rounding, which
    # Adam would blow up to full-size steps in both runs, differently)
    "batchnorm": dict(arch="mlp:32,32,batchnorm=true"),
}


for name in TORCH_OPTIMIZERS:  # every optimizer, with a schedule and L2 on top
    lr = 0.05 if name in ("sgd", "momentum", "nesterov", "adagrad") else 1e-3
    CASES[f"optimizer-{name}"] = dict(
        optimizer=name,
        lr=lr,
        reg=Regularization(l2=1e-4),
        schedule="exponential:decay_steps=10,decay_rate=0.9",
    )


@pytest.mark.parametrize("case", list(CASES))
def test_stack_equals_plain_pytorch_loop(digits, case):
    opts = {"arch": "mlp:32,32", "optimizer": "momentum", "lr": 0.05, "reg": Regularization(),
            "schedule": "constant", **CASES[case]}  # fmt: skip
    steps = 40
    controls = TrainControls(opts["schedule"], opts["reg"])
    run = stack_run(
        [Member(i, SEED) for i in INITS], data=digits, arch=opts["arch"], activation="relu",
        optimizer=opts["optimizer"], lr=opts["lr"],
        batch_size=BATCH, steps=steps, eval_every=None, target_loss=0.5, controls=controls,
    )  # fmt: skip
    records = run.run()
    for k, init in enumerate(INITS):
        alone, model = plain_run(digits, init, steps=steps, **opts)
        stacked = records[k].metrics["train_loss"].values
        gap = max(abs(a - b) / abs(b) for a, b in zip(stacked, alone, strict=True))
        assert gap < 1e-5, f"{case}/{init}: worst relative loss gap {gap:.2e}"
        lr_seen = records[k].metrics["lr"].values
        expected = [opts["lr"] * get_schedule(opts["schedule"]).multiplier(t) for t in range(steps)]
        assert lr_seen == pytest.approx(expected, rel=1e-12)
        state = run.stack.member_state(run.order.index(k))
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(state[name], tensor, rtol=1e-4, atol=1e-5)
    assert sum(records[0].metrics["train_loss"].values[-5:]) < sum(alone[:5])  # it trained


@pytest.mark.parametrize("l1, l2", [(0.0, 1e-2), (1e-3, 0.0), (1e-3, 1e-2)])
def test_penalties_change_the_gradient_by_exactly_their_term(digits, l1, l2):
    """One SGD step at lr 1: the weights move by exactly 2*l2*W + l1*sign(W) more."""

    def one_step(reg):
        run = stack_run([Member("he_normal", 0), Member("lecun_normal", 0)], data=digits,
                       arch="mlp:16", activation="tanh", optimizer="sgd", lr=1.0, batch_size=16,
                       steps=1, eval_every=None, target_loss=0.5,
                       controls=TrainControls(regularization=reg))  # fmt: skip
        before = {n: p.detach().clone() for n, p in run.stack.params.items()}
        run.run()
        return before, {n: p.detach() for n, p in run.stack.params.items()}

    w0, plain = one_step(Regularization())
    _, regular = one_step(Regularization(l1=l1, l2=l2))
    for name in w0:
        extra = plain[name] - regular[name]
        if name.endswith("weight"):
            expected = 2 * l2 * w0[name] + l1 * torch.sign(w0[name])
        else:  # biases are not regularized
            expected = torch.zeros_like(w0[name])
        torch.testing.assert_close(extra, expected, rtol=0, atol=2e-6)


# -- early stopping and plateau on scripted metrics ------------------------------------------


def script_evaluations(monkeypatch, data, val_losses: list[list[float]]):
    """Make evaluation return the scripted val loss of member k at its i-th evaluation
    (repeating the last value past the end), and zeros for the test split."""
    calls = {"val": 0}

    def fake(stack, split, *, chunk, device):
        if split is not data.val:
            return torch.zeros(2, stack.K, dtype=torch.float64)
        i = calls["val"]
        calls["val"] += 1
        row = [seq[min(i, len(seq) - 1)] for seq in val_losses]
        return torch.tensor([row, [0.5] * len(row)], dtype=torch.float64)

    monkeypatch.setattr(trainer_module, "evaluate", fake)


def make_run(data, controls, steps, optimizer="adam", lr=1e-2):
    return stack_run([Member("he_normal", 0), Member("lecun_normal", 0)], data=data,
                    arch="mlp:16,16", activation="relu", optimizer=optimizer, lr=lr,
                    batch_size=BATCH, steps=steps, eval_every=5, target_loss=0.5,
                    controls=controls)  # fmt: skip


STOPPING = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.6]  # best at eval 2; patience 2 -> stop at eval 4
IMPROVING = [1.0 - 0.01 * i for i in range(20)]


def implied(rule: EarlyStopping, sequence, every: int):
    state = rule.start()
    for i, v in enumerate(sequence, start=1):
        state = rule.update(state, v, i * every)
    return state.best_step, state.stopped_step


@pytest.mark.parametrize("restore_best", [True, False])
def test_early_stopping_stops_where_the_rule_implies_and_the_slice_never_moves(
    digits, monkeypatch, restore_best
):
    rule = f"early_stopping:patience=2,restore_best={str(restore_best).lower()}"
    controls = TrainControls(regularization=Regularization(weight_decay=0.1), early_stopping=rule)
    script_evaluations(monkeypatch, digits, [STOPPING, IMPROVING])
    run = make_run(digits, controls, steps=50)
    records = run.run()
    best, stopped = implied(EarlyStopping(patience=2), STOPPING, 5)
    assert (best, stopped) == (10, 20)
    assert records[0].status == "stopped"
    assert (records[0].best_step, records[0].stopped_step) == (best, stopped)
    assert records[0].metrics["train_loss"].steps[-1] == stopped
    assert records[1].status == "finished" and records[1].stopped_step is None
    # Oracles: the same stack trained without early stopping up to the step the member
    # must end at. Momentum, Adam state and decoupled decay must not have moved it since.
    plain = TrainControls(regularization=Regularization(weight_decay=0.1))
    for steps, k in ((best if restore_best else stopped, 0), (50, 1)):
        oracle = make_run(digits, plain, steps=steps)
        oracle.run()
        got, want = run.stack.member_state(k), oracle.stack.member_state(k)
        for name in want:
            assert torch.equal(got[name], want[name]), f"member {k} {name} moved"
    if restore_best:  # member 1 improved at every evaluation: its best is its last
        assert records[1].best_step == 50


def test_every_member_stopped_ends_the_loop(digits, monkeypatch):
    script_evaluations(monkeypatch, digits, [STOPPING, STOPPING])
    run = make_run(digits, TrainControls(early_stopping="patience=2"), steps=400)
    records = run.run()
    assert run.history.done == 20  # not 400
    assert [r.status for r in records] == ["stopped", "stopped"]


def test_plateau_lrs_follow_torch_reduce_on_plateau(digits, monkeypatch):
    metric = [1.0, 1.0, 0.99995, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    script_evaluations(monkeypatch, digits, [metric])
    spec = "plateau:patience=1,factor=0.5,warmup_steps=3"
    run = stack_run([Member("he_normal", 0)], data=digits, arch="mlp:16", activation="relu",
                   optimizer="sgd", lr=0.1, batch_size=BATCH, steps=50, eval_every=5,
                   target_loss=0.5, controls=TrainControls(schedule=spec))  # fmt: skip
    lrs = run.run()[0].metrics["lr"].values
    # the oracle: torch's scheduler stepped with the same metric after every 5 steps
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    torch_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    expected = []
    for step in range(50):
        warm = (step + 1) / 3 if step < 3 else 1.0
        expected.append(opt.param_groups[0]["lr"] * warm)
        if (step + 1) % 5 == 0:
            torch_sched.step(metric[(step + 1) // 5 - 1])
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert min(lrs[10:]) < 0.1  # it did reduce


def test_plateau_needs_a_stack_of_one(digits):
    with pytest.raises(ConfigError, match="stack of one"):
        make_run(digits, TrainControls(schedule="plateau"), steps=10)


def test_activity_penalty_on_a_missing_layer_is_one_clear_error(digits):
    reg = Regularization(activity_l2=0.1, activity_layers=(3,))
    with pytest.raises(ConfigError, match="has 2 activations"):
        make_run(digits, TrainControls(regularization=reg), steps=10)


def test_early_stopped_run_resumes_to_the_same_records(digits, tmp_path):
    """A kill after a member stopped: resuming gives exactly the uninterrupted records."""
    kwargs = dict(data=digits, arch="mlp:32,32", activation="relu", optimizer="adam", lr=0.01,
                  batch_size=BATCH, steps=300, eval_every=10, target_loss=0.5,
                  controls=TrainControls(early_stopping="patience=1"))  # fmt: skip
    members = [Member("he_normal", 0), Member("lecun_normal", 1)]
    whole = train_members(members, **kwargs)
    stops = sorted(r.stopped_step for r in whole if r.stopped_step)
    assert len(stops) == 2 and stops[0] < stops[1]  # the premise: one stops before the other
    kill = stops[0] + 3
    for r in whole:  # restore_best: the reported val loss is the best one, exactly
        assert r.val_loss == min(r.metrics["val_loss"].values)
        assert (
            r.val_loss
            == r.metrics["val_loss"].values[r.metrics["val_loss"].steps.index(r.best_step)]
        )

    class Kill(Exception):
        pass

    def kill_at(step, _total):
        if step == kill:
            raise Kill

    path = tmp_path / "ckpt.safetensors"
    with pytest.raises(Kill):
        train_members(members, **kwargs, on_step=kill_at, checkpoint_path=path, checkpoint_every=25)
    resumed = train_members(members, **kwargs, checkpoint_path=path, checkpoint_every=25)
    for a, b in zip(whole, resumed, strict=True):
        da, db = a.to_dict(), b.to_dict()
        da.pop("wall_time"), db.pop("wall_time")
        assert _same(da, db)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
