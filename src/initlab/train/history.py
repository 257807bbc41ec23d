"""What a stack has recorded so far, kept as tensors (no per-step host sync), and the
:class:`~initlab.results.records.RunRecord` of each member built from it at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from initlab.results.records import MetricSeries, RunRecord
from initlab.runspec import RunSpec

EVAL_METRICS = ("val_loss", "val_acc", "test_loss", "test_acc")
FINAL_WINDOW = 100  # final_train_loss is the mean train loss of the last 100 steps
_STEP_LISTS = ("diverged_step", "stopped_step", "best_step")


@dataclass
class History:
    """Per-step train losses (steps, K), the LR of each step, evaluations, divergence."""

    steps: int
    K: int
    device: torch.device
    train_loss: torch.Tensor = field(init=False)
    lr: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    evals: list[torch.Tensor] = field(default_factory=list)  # each (4, K): EVAL_METRICS
    diverged_step: list[int | None] = field(init=False)
    stopped_step: list[int | None] = field(init=False)  # early stopping
    best_step: list[int | None] = field(init=False)
    # member -> EVAL_METRICS of the weights it ends with, when those are not the last
    # evaluation's (restore_best put its best weights back)
    final: dict[int, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.train_loss = torch.full((self.steps, self.K), math.nan, device=self.device)
        self.diverged_step = [None] * self.K
        self.stopped_step = [None] * self.K
        self.best_step = [None] * self.K

    @property
    def done(self) -> int:
        """Steps recorded so far."""
        return len(self.lr)

    def record_step(self, losses: torch.Tensor, lr: float) -> None:
        """Record one step's per-member train losses (left on the device) and its LR."""
        self.train_loss[self.done] = losses.detach()  # stays on the device: no sync
        self.lr.append(float(lr))

    def record_eval(self, step: int, values: torch.Tensor) -> None:
        """Record one evaluation at ``step``: the (4, K) values of EVAL_METRICS."""
        self.eval_steps.append(int(step))
        self.evals.append(values.to(torch.float64))

    # -- checkpoints -----------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        """Everything recorded so far as named tensors, for a checkpoint."""
        out = {
            "history.train_loss": self.train_loss[: self.done],
            "history.lr": torch.tensor(self.lr, dtype=torch.float64),
            "history.eval_steps": torch.tensor(self.eval_steps, dtype=torch.int64),
        }
        for name in _STEP_LISTS:
            out[f"history.{name}"] = torch.tensor(
                [-1 if s is None else s for s in getattr(self, name)], dtype=torch.int64
            )
        if self.evals:
            out["history.evals"] = torch.stack(self.evals)
        return out

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`tensors` saved."""
        done = tensors["history.lr"].numel()
        self.train_loss[:done] = tensors["history.train_loss"].to(self.device)
        self.lr = tensors["history.lr"].tolist()
        self.eval_steps = tensors["history.eval_steps"].tolist()
        evals = tensors.get("history.evals")
        self.evals = [] if evals is None else [e.to(self.device) for e in evals]
        for name in _STEP_LISTS:
            saved = tensors[f"history.{name}"].tolist()
            setattr(self, name, [None if s < 0 else s for s in saved])

    # -- records ---------------------------------------------------------------------------
    def records(self, configs: list[RunSpec], wall_time: float) -> list[RunRecord]:
        """One record per member (in stack order), read from the device once."""
        losses = self.train_loss[: self.done].cpu()
        evals = torch.stack(self.evals).cpu() if self.evals else torch.empty(0, 4, self.K)
        return [
            self._record(k, cfg, losses[:, k].tolist(), evals[:, :, k], wall_time)
            for k, cfg in enumerate(configs)
        ]

    def _record(self, k, config: RunSpec, losses, evals, wall_time) -> RunRecord:
        died, stopped = self.diverged_step[k], self.stopped_step[k]
        last = died or stopped or len(losses)  # steps are 1-based
        steps = list(range(1, last + 1))
        metrics = {
            "train_loss": MetricSeries("train_loss", steps, losses[:last]),
            "lr": MetricSeries("lr", list(steps), self.lr[:last]),
        }
        kept = [i for i, s in enumerate(self.eval_steps) if (s < died if died else s <= last)]
        for j, name in enumerate(EVAL_METRICS):
            metrics[name] = MetricSeries(
                name, [self.eval_steps[i] for i in kept], [float(evals[i, j]) for i in kept]
            )
        record = RunRecord(config=config, wall_time=wall_time, metrics=metrics)
        reached = next(
            (s for s, v in zip(steps, losses, strict=False) if v <= config.target_loss), None
        )
        record.steps_to_target = reached
        record.best_step = self.best_step[k]
        if died is not None:
            record.status, record.diverged_step = "diverged", died
            return record
        tail = losses[max(0, last - FINAL_WINDOW) : last]
        record.final_train_loss = sum(tail) / len(tail) if tail else math.nan
        final = self.final.get(k)
        if final is None and kept and self.eval_steps[kept[-1]] == last:
            final = [metrics[name].values[-1] for name in EVAL_METRICS]
        if final is not None:
            record.val_loss, record.val_accuracy, record.test_loss, record.test_accuracy = final
        if stopped is not None:
            record.status, record.stopped_step = "stopped", stopped
        else:
            record.status = "finished" if last == self.steps else "running"
        return record
