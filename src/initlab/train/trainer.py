"""Train K models that differ only in init and seed as ONE stack of batched kernels.

>>> from initlab.data import load
>>> data = load("blobs")
>>> spec = stack_spec([Member("he_normal", 0), Member("lecun_normal", 0)], data=data,
...                   arch="mlp:16x2", activation="relu", optimizer="sgd", lr=0.1,
...                   batch_size=32, steps=50, eval_every=25, target_loss=0.5)
>>> records = train_stack(spec, data)
>>> [r.status for r in records], [r.config for r in records] == list(spec.runs)
(['finished', 'finished'], True)

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
from pathlib import Path

import torch
import torch.nn.functional as F

from initlab.activations import from_module
from initlab.data.tensors import Dataset, Split
from initlab.errors import ConfigError
from initlab.initializers import get, init_
from initlab.models.mup import apply_readout
from initlab.models.specs import build, canonical_arch
from initlab.models.stacked import StackedModel
from initlab.results.records import RunRecord
from initlab.runspec import StackSpec
from initlab.train import early_stopping, schedules
from initlab.train.controls import TrainControls
from initlab.train.evaluate import eval_chunk_size, evaluate
from initlab.train.freeze import BestWeights, FrozenMembers
from initlab.train.history import EVAL_METRICS, History
from initlab.train.optim import build_optimizer, canonical_optimizer
from initlab.train.parametrize import Parametrization, stacked_groups
from initlab.train.precision import autocast
from initlab.train.randomness import BatchOrder, dropout_generator, init_generator
from initlab.train.regularize import (
    activity_penalty,
    activity_sums,
    decay_,
    weight_names,
    weight_penalty,
)
from initlab.train.resume import resume_stack_run, save_stack_run
from initlab.train.stack_spec import Member, checkpoint_interval, stack_spec


def train_stack(
    spec: StackSpec,
    data: Dataset,
    *,
    on_step: Callable[[int, int], None] | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int | None = None,
    observe: Callable[[int, StackRun], None] | None = None,
) -> list[RunRecord]:
    """Train every run of ``spec`` together; one :class:`RunRecord` per run, in its order,
    each carrying its :class:`~initlab.runspec.RunSpec`.

    Metrics: ``train_loss`` and ``lr`` every step; ``val_loss``, ``val_acc``, ``test_loss``,
    ``test_acc`` every ``eval_every`` steps and at the end. ``on_step(step, steps)`` is called
    after each step. With ``checkpoint_path``, a checkpoint is written every
    ``checkpoint_every`` steps (default :func:`checkpoint_interval`) and at the end, and an
    existing one is resumed from (the result is bit-identical to an uninterrupted run).
    ``observe(updates, run)`` looks at the stack (``run.stack``) before each step and after
    the last, ``updates`` being the number of optimizer steps taken so far (the coordinate
    check measures activations there); it must not change the weights.
    """
    every = checkpoint_every or checkpoint_interval(spec.common.steps)
    return StackRun(spec, data).run(on_step, checkpoint_path, every, observe)


def train_members(members: list[Member], *, data: Dataset, on_step=None, checkpoint_path=None,
                  checkpoint_every=None, **settings) -> list[RunRecord]:  # fmt: skip
    """:func:`stack_spec` then :func:`train_stack`: train ``members`` with the settings
    ``stack_spec`` takes.

    >>> from initlab.data import load
    >>> records = train_members(
    ...     [Member("he_normal", 0), Member("lecun_normal", 0)], data=load("blobs"),
    ...     arch="mlp:16x2", activation="relu", optimizer="sgd", lr=0.1, batch_size=32,
    ...     steps=50, eval_every=25, target_loss=0.5)
    >>> [r.status for r in records], records[0].metrics["val_acc"].steps
    (['finished', 'finished'], [25, 50])
    """
    spec = stack_spec(members, data=data, **settings)
    return train_stack(spec, data, on_step=on_step, checkpoint_path=checkpoint_path,
                       checkpoint_every=checkpoint_every)  # fmt: skip


class StackRun:
    """One stack being trained: ``StackRun(spec, data).run()`` gives the records; ``.stack``
    holds the weights it ended with (tests compare them with lone runs).

    The spec is trusted as it is (checked and canonical: see :func:`stack_spec` and
    ``CompareConfig``); nothing here parses or validates a setting again."""

    def __init__(self, spec: StackSpec, data: Dataset) -> None:
        common = spec.common
        self.data, self.device = data, torch.device(spec.device)
        self.steps, self.lr, self.eval_every = common.steps, common.lr, common.eval_every
        self.controls = TrainControls.from_extra(common.extra)
        self.precision = self.controls.precision
        self.schedule = schedules.get(self.controls.schedule)
        self.reg = self.controls.regularization
        stop = self.controls.early_stopping
        self.stopper = early_stopping.get(stop) if stop else None
        if self.controls.per_model_lr and len(spec.runs) > 1:
            raise ConfigError(
                f"Schedule '{self.controls.schedule}' reacts to each model's own metric, so "
                "each model trains in a stack of one; give one member (compare does this)."
            )
        # Stack order: by seed, so each seed's members share one input batch.
        self.order = sorted(range(len(spec.runs)), key=lambda i: spec.runs[i].seed)
        self.configs = [spec.runs[i] for i in self.order]
        self.keys = [(rc.init, rc.seed) for rc in self.configs]
        seeds = [seed for _, seed in self.keys]
        distinct = sorted(set(seeds))
        even = all(seeds.count(s) == seeds.count(distinct[0]) for s in distinct)
        group_seeds = distinct if even else seeds  # uneven groups: one input batch per member
        arch, act, bias_spec = common.arch, common.activation, common.bias_init
        # a width parametrization (muP): the readout multiplier on every member, per-parameter
        # learning-rate multipliers in the optimizer's groups
        self.parametrization = Parametrization.from_extra(common.extra)
        self.plan = None
        if self.parametrization is not None:
            self.plan = self.parametrization.plan(
                arch, in_shape=data.in_shape, n_classes=data.n_classes, activation=act,
                optimizer=common.optimizer,
            )  # fmt: skip
        models = []
        bias = get(bias_spec)
        for init, seed in self.keys:
            model = build(arch, activation=act, in_shape=data.in_shape, n_classes=data.n_classes)
            scheme = get(init)  # the spec's canonical string, resolved once for this member
            # data-driven schemes (lsuv, dbn) see the training inputs only, never val/test
            more = {"data": _init_data(data)} if scheme.data_driven else {}
            init_(model, scheme, bias=bias, generator=init_generator(init, seed), **more)
            if self.plan is not None:
                apply_readout(model, self.plan)
            models.append(model)
        self.stack = StackedModel(models, in_shape=data.in_shape).to(self.device)
        self.params = list(self.stack.params.values())
        self.weights = [self.stack.params[n] for n in weight_names(self.stack.template)]
        self.capture = self._activity_positions()
        groups = self.params if self.plan is None else stacked_groups(
            self.stack.params, self.plan, common.lr)  # fmt: skip
        self.optimizer = build_optimizer(common.optimizer, groups, lr=common.lr)
        self.generators = (
            [dropout_generator(i, s, self.device) for i, s in self.keys]
            if self.stack.has_dropout
            else None
        )
        self.train = Split(data.train.x.to(self.device), data.train.y.to(self.device),
                           data.train.divisor)  # fmt: skip
        self.order_of_batches = BatchOrder(
            group_seeds, n=len(data.train), batch_size=common.batch_size, device=self.device
        )
        self.history = History(self.steps, len(spec.runs), self.device)
        self.frozen = FrozenMembers(self.stack, self.device)
        self.dead: list[int] = []  # diverged members (frozen too)
        K = len(spec.runs)
        self.stop_states = [self.stopper.start() for _ in range(K)] if self.stopper else []
        restore = self.stopper is not None and self.stopper.restore_best
        self.best = BestWeights(self.stack) if restore else None
        plateau = isinstance(self.schedule, schedules.Plateau)
        self.plateau = self.schedule.start(self.lr) if plateau else None
        self.wall_time = 0.0
        # What a checkpoint must match to be resumed: members and every shared setting.
        # (in canonical spelling, as the trainer has always written it, so that a checkpoint
        # taken before a stack's settings came in a spec still resumes)
        shared = {**common.shared(), "dataset": data.name, "arch": canonical_arch(arch),
                  "optimizer": canonical_optimizer(common.optimizer)}  # fmt: skip
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
    def run(self, on_step=None, checkpoint_path=None, checkpoint_every=None,
            observe=None) -> list[RunRecord]:  # fmt: skip
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
            if observe is not None:
                observe(step - 1, self)
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
        if observe is not None:
            observe(self.history.done, self)
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
            group["lr"] = lr * group.get("lr_mult", 1.0)
        idx = self.order_of_batches.indices(step - 1)  # (G, B)
        x, y = self.train.features(idx), self.train.labels(idx)
        with autocast(self.precision, self.device):
            if self.capture:
                logits, captured = self.stack.forward_capturing(
                    x, self.capture, train=True, generators=self.generators
                )
            else:
                logits, captured = self.stack(x, train=True, generators=self.generators), []
        logits = logits.float()  # the loss (and its reduction) in fp32 under bf16 too
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
        with autocast(self.precision, self.device):
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
        with autocast(self.precision, self.device):
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
