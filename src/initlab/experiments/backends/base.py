r"""What every sweep backend shares: the interface, the retry count, one job's work.

>>> error_line(ValueError("bad\nthing"))
'ValueError: bad thing'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from initlab.experiments.compare import run_specs, train_runs
from initlab.experiments.config import CompareConfig

if TYPE_CHECKING:
    from initlab.experiments.sweep import Job

OnResult = Callable[["Job", "list[dict[str, Any]] | None", "str | None"], None]
MAX_RETRIES = 2  # a job runs at most 3 times before it is recorded as failed


class Backend(Protocol):
    name: str
    workers: int | None
    retried: int | None  # retries this backend made (None: the backend does not say)

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        """Train every job; call ``on_result(job, records, error)`` once per job as it ends
        (``records`` None and ``error`` a line when it failed after its retries)."""


def run_job(config: dict[str, Any], data: Any = None) -> list[dict[str, Any]]:
    """Train one job (a ``CompareConfig`` as plain data) and return its records as dicts.

    The thread count is ``config["threads"]`` (the sweep's --threads-per-job), so a job's
    numbers never depend on the backend or the worker it ran on. ``data`` is a loaded Dataset
    (Ray passes it from the object store); without it the worker loads ``config["dataset"]``
    (once per worker process: datasets are cached).
    """
    cfg = CompareConfig(**config)
    return [r.to_dict() for r in train_runs(cfg, run_specs(cfg), data=data)]


def error_line(exc: BaseException) -> str:
    """``"ValueError: bad thing"`` on one line, for a failed job's record."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]
