"""LR schedules against torch.optim.lr_scheduler and the closed-form formulas."""

from __future__ import annotations

import math

import pytest
import torch

from initlab.errors import InitSpecError
from initlab.train.early_stopping import EarlyStopping
from initlab.train.schedules import get, names

BASE = 0.1
STEPS = 300


def torch_lrs(make_scheduler, steps=STEPS):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE)
    sched = make_scheduler(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(
    "spec, make",
    [
        ("step:step_size=70,gamma=0.5", lambda o: torch.optim.lr_scheduler.StepLR(o, 70, 0.5)),
        (
            "exponential:decay_steps=1,decay_rate=0.99",
            lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.99),
        ),
        (
            "cosine:decay_steps=300,alpha=0.1",
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 300, eta_min=0.1 * BASE),
        ),
        (
            "cosine_restarts:first_decay_steps=50,t_mul=2,alpha=0.0",
            lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 50, T_mult=2),
        ),
        ("constant", lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=1.0)),
    ],
)
def test_schedule_matches_torch(spec, make):
    ours = get(spec).lrs(BASE, STEPS)
    assert ours == pytest.approx(torch_lrs(make), rel=1e-9, abs=1e-12)


def test_formulas_for_keras_style_schedules():
    s = get("exponential:decay_steps=100,decay_rate=0.5,staircase=true")
    assert [s.multiplier(t) for t in (0, 99, 100, 250)] == [1.0, 1.0, 0.5, 0.25]
    s = get("inverse_time:decay_steps=10,decay_rate=0.5")
    assert s.multiplier(20) == pytest.approx(1 / (1 + 0.5 * 2))
    # m_mul shrinks each restart's peak; t_mul=1 keeps the period
    s = get("cosine_restarts:first_decay_steps=10,t_mul=1,m_mul=0.5")
    assert [s.multiplier(t) for t in (0, 10, 20)] == pytest.approx([1.0, 0.5, 0.25])
    assert s.multiplier(5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_linear_warmup_then_schedule():
    s = get("cosine:decay_steps=100,warmup_steps=10")
    lrs = s.lrs(1.0, 111)
    assert lrs[:10] == pytest.approx([(t + 1) / 10 for t in range(10)])
    assert lrs[10] == 1.0 and lrs[110] == pytest.approx(0.0)


def test_plateau_matches_torch_on_a_scripted_metric():
    metrics = [1.0, 0.9, 0.91, 0.92, 0.93, 0.89, 0.95, 0.96, 0.97, 0.99, 1.0, 0.5, 0.6, 0.7, 0.8]
    rule = get("plateau:factor=0.5,patience=2,cooldown=1")
    state = rule.start(BASE)
    ours = []
    for m in metrics:
        state = rule.update(state, m)
        ours.append(state.lr)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1)
    theirs = []
    for m in metrics:
        sched.step(m)
        theirs.append(opt.param_groups[0]["lr"])
    assert ours == pytest.approx(theirs)
    assert min(ours) < BASE


def test_early_stopping_stops_where_the_rule_implies():
    rule = EarlyStopping(patience=3, min_delta=0.01)
    values = [1.0, 0.8, 0.795, 0.79, 0.805, 0.7, 0.71, 0.72, 0.73, 0.5]
    state = rule.start()
    for step, v in enumerate(values):
        state = rule.update(state, v, step)
    # 0.795 and 0.79 do not beat 0.8 by more than 0.01; 0.805 is the third miss -> stop at 4
    assert state.stopped_step == 4 and state.best_step == 1 and state.best == 0.8
    rule = EarlyStopping(monitor="val_acc", mode="max", patience=1)
    state = rule.start()
    for step, v in enumerate([0.5, 0.6, 0.59]):
        state = rule.update(state, v, step)
    assert state.stopped_step == 2 and state.best == 0.6


def test_bad_schedule_specs():
    with pytest.raises(InitSpecError, match="Did you mean 'cosine'"):
        get("cosin")
    with pytest.raises(InitSpecError, match="must be > 0"):
        get("step:step_size=0")
    with pytest.raises(InitSpecError, match="Did you mean 'gamma'"):
        get("step:gama=0.5")
    assert "plateau" in names()
