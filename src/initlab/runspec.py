"""Run specs: the frozen, torch-free settings of one run and of one stack of runs.

Built and validated once at the edge (``CompareConfig`` for the CLI, TOML files and
``initlab.compare``; :func:`initlab.train.trainer.stack_spec` for Python callers of the
trainer), then consumed as they are: the trainer reads a :class:`StackSpec` and the records
it returns carry the :class:`RunSpec` of each model, whose :meth:`RunSpec.key` is the run's id
in a results store.

>>> from dataclasses import replace
>>> run = RunSpec(dataset="blobs", arch="mlp:16", activation="relu", init="he_normal", seed=0,
...               optimizer="sgd", lr=0.1, batch_size=32, steps=50)
>>> stack = StackSpec((run, replace(run, seed=1)))
>>> stack.members, stack.common.steps, len(run.key())
((('he_normal', 0), ('he_normal', 1)), 50, 16)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RunSpec", "StackSpec"]


@dataclass(frozen=True)
class RunSpec:
    """The resolved settings of ONE model run (one init x one seed).

    ``key()`` hashes everything that changes the numbers, so rerunning a command finds its
    finished runs. ``extra`` holds later options (schedules, regularizers...) as plain data,
    only where they differ from the plain run, so older runs keep their keys.
    """

    dataset: str
    arch: str
    activation: str
    init: str  # canonical spec string of the initializer
    seed: int  # seed index
    optimizer: str  # spec string, e.g. "sgd" or "adam:betas=0.9,0.999"
    lr: float
    batch_size: int
    steps: int
    eval_every: int = 100
    target_loss: float = 0.5
    bias_init: str = "zeros"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`key` hashes it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        """Rebuild a spec from :meth:`to_dict` data."""
        return cls(**d)

    def key(self) -> str:
        """16 hex digits of the sha256 of the sorted JSON: the run's id in a results store."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def shared(self) -> dict[str, Any]:
        """Every setting but the member's own (init, seed): what a stack's runs share."""
        return {**self.to_dict(), "init": None, "seed": None}


# RunConfig was this class's name while it lived in initlab.results.records.
RunConfig = RunSpec


@dataclass(frozen=True)
class StackSpec:
    """The runs one stack trains together: same settings, each its own (init, seed).

    The shared settings are :attr:`common` (``spec.common.steps``, ``spec.common.lr``, ...);
    the runs keep the order they are given in: the order of the records the trainer returns.
    """

    runs: tuple[RunSpec, ...]
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("A stack needs at least one run: give at least one (init, seed).")
        first = self.runs[0].shared()
        for run in self.runs[1:]:
            if run.shared() != first:
                diff = sorted(k for k, v in run.shared().items() if first[k] != v)
                raise ValueError(f"The runs of one stack differ in {', '.join(diff)}.")

    @property
    def members(self) -> tuple[tuple[str, int], ...]:
        """(init spec, seed index) of each run, in order."""
        return tuple((r.init, r.seed) for r in self.runs)

    @property
    def common(self) -> RunSpec:
        """The settings every run shares, read from the first run (its init and seed are that
        run's own: use :attr:`members` for those)."""
        return self.runs[0]
