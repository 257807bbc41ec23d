"""Train K models that differ only in init and seed as ONE stack of batched kernels.

>>> from initlab.data import load
>>> records = train_stack(
...     [Member("he_normal", 0), Member("lecun_normal", 0)], data=load("blobs"),
...     arch="mlp:16x2", activation="relu", optimizer="sgd", lr=0.1, batch_size=32,
...     steps=50, eval_every=25, target_loss=0.5)
>>> [r.status for r in records], records[0].metrics["val_acc"].steps
(['finished', 'finished'], [25, 50])

How it stays exact: each member's loss is the mean cross-entropy of its own batch; one
backward runs over the SUM of the K losses, so each member's gradient is the one it would
get alone; the optimizers are element-wise. Members are ordered by seed so the members of a
seed share one input batch (and the first layer's matmul); see :mod:`initlab.models.stacked`.

Controls (:class:`~initlab.train.controls.TrainControls`): the LR schedule sets every param
group's LR before each step (step-only schedules are shared by the stack; reduce-on-plateau
reacts to one model's metric, so it needs a stack of one); L1/L2 and activity penalties are
added to each member's own loss; decoupled weight decay scales the weights before each step;
early stopping is checked at every evaluation, per member.

Frozen members (:mod:`initlab.train.freeze`): a member whose loss is NaN/inf is marked
diverged at that step, and a member whose early-stopping rule fires is stopped; either is
left out of the summed loss, its gradient zeroed, and its parameters and buffers restored
after every later optimizer step, so no optimizer state moves it again and its NaN reaches
no other member. When every member is frozen the loop ends. The only host sync per step is
the finiteness check (a single bool); losses stay on the device until the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from initlab.data.dataset import Dataset, Split
from initlab.errors import ConfigError
from initlab.initializers import get, init_
from initlab.initializers.activations import from_module, resolve
from initlab.models.specs import build, canonical_arch
from initlab.models.stacked import StackedModel
from initlab.results.records import RunConfig, RunRecord
from initlab.train import early_stopping, schedules
from initlab.train.controls import TrainControls
from initlab.train.evaluate import eval_chunk_size, evaluate
from initlab.train.freeze import BestWeights, FrozenMembers
from initlab.train.history import EVAL_METRICS, History
from initlab.train.optim import canonical_optimizer, make_optimizer
from initlab.train.randomness import BatchOrder, dropout_generator, init_generator
from initlab.train.regularize import (
    activity_penalty,
    activity_sums,
    decay_,
    weight_names,
    weight_penalty,
)
from initlab.train.resume import resume_stack_run, save_stack_run


@dataclass(frozen=True)
class Member:
    """One model of a stack: an init spec and a seed index."""

    init: str
    seed: int


def train_stack(
    members: list[Member],
    *,
    data: Dataset,
    arch: str,
    activation: str,
    optimizer: str,
    lr: float,
    batch_size: int,
    steps: int,
    eval_every: int | None,
    target_loss: float,
    bias: str = "zeros",
    device: str | torch.device = "cpu",
    controls: TrainControls | None = None,
    on_step: Callable[[int, int], None] | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int | None = None,
) -> list[RunRecord]:
    """Train every member together; one :class:`RunRecord` per member, in the given order.

    Metrics: ``train_loss`` and ``lr`` every step; ``val_loss``, ``val_acc``, ``test_loss``,
    ``test_acc`` every ``eval_every`` steps (None: only at the end) and at the end.
    ``on_step(step, steps)`` is called after each step. With ``checkpoint_path``, a checkpoint
    is written every ``checkpoint_every`` steps and at the end, and an existing one is
    resumed from (the result is bit-identical to an uninterrupted run).
    """
    run = StackRun(
        members, data=data, arch=arch, activation=activation, optimizer=optimizer, lr=lr,
        batch_size=batch_size, steps=steps, eval_every=eval_every, target_loss=target_loss,
        bias=bias, device=torch.device(device), controls=controls or TrainControls(),
    )  # fmt: skip
    return run.run(on_step, checkpoint_path, checkpoint_every)


class StackRun:
    """One stack being trained: ``StackRun(...).run()`` gives the records; ``.stack`` holds
    the weights it ended with (tests compare them with lone runs)."""

    def __init__(self, members, *, data, arch, activation, optimizer, lr, batch_size, steps,
                 eval_every, target_loss, bias="zeros", device="cpu",
                 controls=None):  # fmt: skip
        _check(members, data, batch_size, steps, eval_every, lr)
        self.data, self.device, self.steps, self.lr = data, torch.device(device), steps, lr
        self.eval_every = eval_every or steps
        self.controls = (controls or TrainControls()).canonical()
        self.schedule = schedules.get(self.controls.schedule)
        self.reg = self.controls.regularization
        stop = self.controls.early_stopping
        self.stopper = early_stopping.get(stop) if stop else None
        if self.controls.per_model_lr and len(members) > 1:
            raise ConfigError(
                f"Schedule '{self.controls.schedule}' reacts to each model's own metric, so "
                "each model trains in a stack of one; give one member (compare does this)."
            )
        inits = [get(m.init).to_spec() for m in members]
        bias_spec = get(bias).to_spec()
        # Stack order: by seed, so each seed's members share one input batch.
        self.order = sorted(range(len(members)), key=lambda i: members[i].seed)
        self.keys = [(inits[i], members[i].seed) for i in self.order]
        seeds = [seed for _, seed in self.keys]
        distinct = sorted(set(seeds))
        even = all(seeds.count(s) == seeds.count(distinct[0]) for s in distinct)
        group_seeds = distinct if even else seeds  # uneven groups: one input batch per member
        arch, act = canonical_arch(arch), resolve(activation).spec
        opt_spec = canonical_optimizer(optimizer)
        extra = self.controls.to_extra()
        self.configs = [
            RunConfig(dataset=data.name, arch=arch, activation=act, init=init, seed=seed,
                      optimizer=opt_spec, lr=float(lr), batch_size=batch_size, steps=steps,
                      eval_every=self.eval_every, target_loss=float(target_loss),
                      bias_init=bias_spec, extra=dict(extra))
            for init, seed in self.keys
        ]  # fmt: skip
        models = []
        for init, seed in self.keys:
            model = build(arch, activation=act, in_shape=data.in_shape, n_classes=data.n_classes)
            # data-driven schemes (lsuv, dbn) see the training inputs only, never val/test
            more = {"data": _init_data(data)} if get(init).data_driven else {}
            init_(model, init, bias=bias_spec, generator=init_generator(init, seed), **more)
            models.append(model)
        self.stack = StackedModel(models, in_shape=data.in_shape).to(self.device)
        self.params = list(self.stack.params.values())
        self.weights = [self.stack.params[n] for n in weight_names(self.stack.template)]
        self.capture = self._activity_positions()
        self.optimizer = make_optimizer(opt_spec, self.params, lr=lr)
        self.generators = (
            [dropout_generator(i, s, self.device) for i, s in self.keys]
            if self.stack.has_dropout
            else None
        )
        self.train = Split(data.train.x.to(self.device), data.train.y.to(self.device),
                           data.train.divisor)  # fmt: skip
        self.order_of_batches = BatchOrder(
            group_seeds, n=len(data.train), batch_size=batch_size, device=self.device
        )
        self.history = History(steps, len(members), self.device)
        self.frozen = FrozenMembers(self.stack, self.device)
        self.dead: list[int] = []  # diverged members (frozen too)
        K = len(members)
        self.stop_states = [self.stopper.start() for _ in range(K)] if self.stopper else []
        restore = self.stopper is not None and self.stopper.restore_best
        self.best = BestWeights(self.stack) if restore else None
        plateau = isinstance(self.schedule, schedules.Plateau)
        self.plateau = self.schedule.start(float(lr)) if plateau else None
        self.wall_time = 0.0
        # What a checkpoint must match to be resumed: members and every shared setting.
        shared = {**self.configs[0].to_dict(), "init": None, "seed": None}
        self.fingerprint = _jsonable(
            {"members": [list(k) for k in self.keys], "config": shared, "mode": self.stack.mode}
        )

    def _activity_positions(self) -> frozenset[int]:
        if not self.reg.activity:
            return frozenset()
        if self.stack.mode != "batched":
            raise ConfigError(
                "Activity regularization needs a built-in mlp:/cnn: arch (a plain "
                f"nn.Sequential); this model runs in {self.stack.mode} mode."
            )
        count = sum(from_module(m) is not None for m in self.stack.template.modules())
        wanted = self.reg.activity_layers or tuple(range(1, count + 1))
        if any(i > count for i in wanted):
            raise ConfigError(
                f"activity_layers={list(wanted)}: this model has {count} activations (1..{count})."
            )
        return frozenset(i - 1 for i in wanted)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, on_step=None, checkpoint_path=None, checkpoint_every=None) -> list[RunRecord]:
        """Train every member to the end and return one RunRecord each, in the members' order.

        Resumes from ``checkpoint_path`` when it exists and saves it every ``checkpoint_every``
        steps and at the end."""
        if checkpoint_path is not None and Path(checkpoint_path).exists():
            resume_stack_run(self, checkpoint_path)
        chunk = eval_chunk_size(self.stack)
        started = time.perf_counter()
        for step in range(self.history.done + 1, self.steps + 1):
            if len(self.frozen.members) == self.stack.K:
                break  # every member diverged or stopped: nothing moves any more
            self._step(step)
            if step % self.eval_every == 0 or step == self.steps:
                self._evaluate(step, chunk)
            last = step == self.steps or len(self.frozen.members) == self.stack.K
            if checkpoint_path is not None and (
                last or (checkpoint_every and step % checkpoint_every == 0)
            ):
                save_stack_run(
                    self, checkpoint_path, self.wall_time + time.perf_counter() - started
                )
            if on_step is not None:
                on_step(step, self.steps)
        self._restore_best(chunk)
        self.wall_time += time.perf_counter() - started
        records = self.history.records(self.configs, self.wall_time)
        out: list[RunRecord] = [None] * len(records)  # type: ignore[list-item]
        for position, index in enumerate(self.order):
            out[index] = records[position]
        return out

    def _lr(self, step: int) -> float:
        """The LR of 1-based ``step``: the schedule's factor times the base (or plateau) LR."""
        base = self.plateau.lr if self.plateau is not None else float(self.lr)
        return base * self.schedule.multiplier(step - 1)

    def _step(self, step: int) -> None:
        lr = self._lr(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        idx = self.order_of_batches.indices(step - 1)  # (G, B)
        x, y = self.train.features(idx), self.train.labels(idx)
        if self.capture:
            logits, captured = self.stack.forward_capturing(
                x, self.capture, train=True, generators=self.generators
            )
        else:
            logits, captured = self.stack(x, train=True, generators=self.generators), []
        K, B, C = logits.shape
        y = y.repeat_interleave(K // y.shape[0], dim=0) if y.shape[0] != K else y
        losses = F.cross_entropy(logits.reshape(K * B, C), y.reshape(K * B), reduction="none")
        losses = losses.view(K, B).mean(1)
        objective = losses
        for term in (
            weight_penalty(self.reg, self.weights),
            activity_penalty(self.reg, [activity_sums(t, lay, K) for t, lay in captured]),
        ):
            if term is not None:
                objective = objective + term
        if not bool(torch.isfinite(objective).all()) or self.frozen:  # the one sync per step
            total = self._mask_diverged(objective, step)
        else:
            total = objective.sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.frozen.zero_grads()
        decay_(self.reg, self.weights, lr)
        self.optimizer.step()
        self.frozen.restore()
        self.history.record_step(losses, lr)

    def _mask_diverged(self, losses: torch.Tensor, step: int) -> torch.Tensor:
        finite = torch.isfinite(losses).tolist()
        newly = [k for k, ok in enumerate(finite) if not ok and k not in self.frozen]
        for k in newly:
            self.history.diverged_step[k] = step
        self.dead = sorted(self.dead + newly)
        self.frozen.freeze(newly)
        return self.frozen.mask(losses)

    # -- evaluation, early stopping, plateau ---------------------------------------------------
    def _evaluate(self, step: int, chunk: int) -> None:
        values = torch.cat([evaluate(self.stack, s, chunk=chunk, device=self.device)
                            for s in (self.data.val, self.data.test)])  # fmt: skip
        previous = self.history.eval_steps[-1] if self.history.eval_steps else 0
        self.history.record_eval(step, values)
        if self.stopper is None and self.plateau is None:
            return
        train = self.history.train_loss[previous:step].mean(0, dtype=torch.float64)
        metrics = {n: values[i].tolist() for i, n in enumerate(EVAL_METRICS)}
        metrics["train_loss"] = train.tolist()
        if self.plateau is not None:
            self.plateau = self.schedule.update(self.plateau, metrics[self.schedule.monitor][0])
        if self.stopper is not None:
            self._early_stopping(step, metrics[self.stopper.monitor])

    def _early_stopping(self, step: int, values: list[float]) -> None:
        stopped = []
        for k, value in enumerate(values):
            if k in self.dead or self.stop_states[k].stopped:
                continue
            state = self.stopper.update(self.stop_states[k], value, step)
            self.stop_states[k] = state
            if state.improved:
                self.history.best_step[k] = step
                if self.best is not None:
                    self.best.keep(k)
            if state.stopped:
                self.history.stopped_step[k] = step
                stopped.append(k)
        self.frozen.freeze(stopped)

    def _restore_best(self, chunk: int) -> None:
        """restore_best: members end with their best weights, evaluated once more."""
        if self.best is None:
            return
        ks = [k for k in range(self.stack.K)
              if k not in self.dead and self.history.best_step[k] is not None]  # fmt: skip
        if not ks:
            return
        self.best.restore(ks)
        values = torch.cat([evaluate(self.stack, s, chunk=chunk, device=self.device)
                            for s in (self.data.val, self.data.test)]).cpu()  # fmt: skip
        for k in ks:
            self.history.final[k] = values[:, k].tolist()


def _init_data(data: Dataset, limit: int = 10_000) -> torch.Tensor:
    """The inputs data-driven inits calibrate or pretrain on: the first ``limit`` training
    examples (a fixed slice, so every member and rerun sees the same data)."""
    return data.train.features(slice(0, min(limit, len(data.train))))


def _jsonable(obj):
    """``obj`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(obj))


def _check(members, data, batch_size, steps, eval_every, lr) -> None:
    if not members:
        raise ConfigError("No members to train: give at least one (init, seed).")
    for name, value, low in (("steps", steps, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r} must be an integer >= {low}.")
    if batch_size > len(data.train):
        raise ConfigError(
            f"batch_size={batch_size} exceeds the {len(data.train)} training examples of "
            f"'{data.name}'."
        )
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise ConfigError(f"eval_every={eval_every!r} must be an integer >= 1 (or None).")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"lr={lr!r} must be a positive number.")
    for m in members:
        if isinstance(m.seed, bool) or not isinstance(m.seed, int) or m.seed < 0:
            raise ConfigError(f"Seed {m.seed!r} of member {m} must be an integer >= 0.")
