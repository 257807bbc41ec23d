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

from initlab.errors import ConfigError, unknown_name
from initlab.experiments.backends.base import MAX_RETRIES, Backend, OnResult, error_line, run_job
from initlab.experiments.backends.local import LocalBackend
from initlab.experiments.backends.ray import RayBackend

__all__ = ["MAX_RETRIES", "Backend", "OnResult", "error_line", "get_backend", "run_job"]
BACKENDS = ("local", "ray")


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
        return LocalBackend(workers=workers, threads=threads, max_retries=max_retries)
    if name == "ray":
        return RayBackend(workers=workers, threads=threads, address=address,
                          max_retries=max_retries)  # fmt: skip
    raise ConfigError(unknown_name("backend", name, BACKENDS))
