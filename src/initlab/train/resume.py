"""Checkpoints of a stack being trained (see :mod:`initlab.train.checkpoint` for the format).

A checkpoint must match the run's fingerprint (members and every shared setting) to be
resumed; the resumed run continues bit-identically to an uninterrupted one.
"""

from __future__ import annotations

import torch

from initlab.errors import ConfigError
from initlab.train import checkpoint as ckpt
from initlab.train import early_stopping, schedules


def save_stack_run(run, path, wall_time: float) -> None:
    """Write everything ``run`` needs to go on bit-identically: weights, optimizer state,
    history, dropout generators, frozen members, early-stopping and plateau states."""
    tensors = {**run.stack.tensors(), **run.history.tensors()}
    if run.best is not None:
        tensors.update(run.best.checkpoint())
    state = run.optimizer.state_dict()
    for i, entry in state["state"].items():
        for key, value in entry.items():
            if value is not None:
                tensors[f"optim.{i}.{key}"] = torch.as_tensor(value)
    for k, g in enumerate(run.generators or []):
        tensors[f"generator.dropout.{k}"] = g.get_state()
    meta = {
        "fingerprint": run.fingerprint, "step": run.history.done, "wall_time": wall_time,
        "param_groups": state["param_groups"], "dead": run.dead,
        "frozen": run.frozen.members,
        "stop_states": [vars(s) for s in run.stop_states],
        "plateau": None if run.plateau is None else vars(run.plateau),
    }  # fmt: skip
    ckpt.save_checkpoint(path, tensors, meta)


def resume_stack_run(run, path) -> None:
    """Load a checkpoint written by :func:`save_stack_run` into a freshly built ``run``."""
    tensors, meta = ckpt.load_checkpoint(path)
    if meta.get("fingerprint") != run.fingerprint:
        raise ConfigError(
            f"{path}: checkpoint of a different experiment (members or settings differ); "
            "use another path or delete it."
        )
    run.stack.load_tensors(tensors)
    run.history.load(tensors)
    if run.best is not None:
        run.best.load(tensors)
    state = run.optimizer.state_dict()
    for i in range(len(run.params)):
        prefix = f"optim.{i}."
        entry = {
            k[len(prefix) :]: v.to(run.device) for k, v in tensors.items() if k.startswith(prefix)
        }
        if entry:
            state["state"][i] = entry
    for group, saved in zip(state["param_groups"], meta["param_groups"], strict=True):
        for key, value in saved.items():
            group[key] = tuple(value) if isinstance(group.get(key), tuple) else value
    run.optimizer.load_state_dict(state)
    for k, g in enumerate(run.generators or []):
        g.set_state(tensors[f"generator.dropout.{k}"])
    run.dead = list(meta["dead"])
    run.frozen.freeze(list(meta.get("frozen", run.dead)))
    run.stop_states = [early_stopping.StopState(**s) for s in meta.get("stop_states", [])]
    if meta.get("plateau") is not None:
        run.plateau = schedules.PlateauState(**meta["plateau"])
    run.wall_time = float(meta["wall_time"])
