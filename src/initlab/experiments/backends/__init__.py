"""Sweep backends: run :class:`~initlab.experiments.sweep.Job` s, hand back plain records.

Every backend has the same small interface (:class:`Backend`): ``run(jobs, on_result)`` calls
``on_result(job, record_dicts, None)`` as each job finishes, or ``on_result(job, None, error)``
once a job has failed ``1 + max_retries`` times. Workers only train (:func:`run_job`); the
driver alone writes the results store.

>>> backend = get_backend("local", workers=2)
>>> backend.name, backend.workers
('local', 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from initlab.errors import ConfigError, unknown_name
from initlab.experiments.compare import run_specs, train_runs
from initlab.experiments.config import CompareConfig

if TYPE_CHECKING:
    from initlab.experiments.sweep import Job

OnResult = Callable[["Job", "list[dict[str, Any]] | None", "str | None"], None]
BACKENDS = ("local", "ray")
MAX_RETRIES = 2  # a job runs at most 3 times before it is recorded as failed


class Backend(Protocol):
    name: str
    workers: int | None
    retried: int | None  # retries this backend made (None: the backend does not say)

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        """Train every job; call ``on_result(job, records, error)`` once per job as it ends
        (``records`` None and ``error`` a line when it failed after its retries)."""


def get_backend(
    name: str,
    *,
    workers: int | None = None,
    threads: int = 1,
    address: str | None = None,
    max_retries: int = MAX_RETRIES,
) -> Backend:
    """The backend called ``name`` ("local" or "ray"); raises ConfigError when unusable."""
    if name == "local":
        if address is not None:
            raise ConfigError("--address joins a Ray cluster; use it with --backend ray.")
        # lazy: cycle, local.py imports this module (TODO(issue 18): a backends/base.py)
        from initlab.experiments.backends.local import LocalBackend

        return LocalBackend(workers=workers, threads=threads, max_retries=max_retries)
    if name == "ray":
        from initlab.experiments.backends.ray import RayBackend  # lazy: cycle, as local.py

        return RayBackend(workers=workers, threads=threads, address=address,
                          max_retries=max_retries)  # fmt: skip
    raise ConfigError(unknown_name("backend", name, BACKENDS))


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
