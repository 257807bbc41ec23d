"""The Ray backend: one Ray core task per job (not Ray Tune), on a local or joined cluster.

Without ``address``, ``ray.init()`` starts a local cluster with ``workers x threads`` CPUs
(all cores when ``workers`` is None) and shuts it down afterwards; with ``address`` (e.g.
``ray://head:10001`` or ``auto``) the sweep joins that cluster, whose nodes need initlab
installed. Each dataset is loaded once by the driver and put into the object store once;
tasks receive a reference. Ray retries a task ``max_retries`` times, after a worker crash
and after an exception alike (``retry_exceptions=True``); a task that keeps failing is handed
back with its error.

>>> RayBackend(workers=2).name  # collected only where Ray is installed (conftest.py)
'ray'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from initlab.data.datasets import load
from initlab.errors import ConfigError
from initlab.experiments.backends.base import MAX_RETRIES, OnResult, error_line, run_job

INSTALL_HINT = "The ray backend needs Ray, which is not installed: pip install 'initlab[ray]'."


def _import_ray() -> Any:
    try:
        import ray  # lazy: optional dependency (initlab[ray])
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


class RayBackend:
    """Run jobs as Ray tasks of ``threads`` CPUs each."""

    name = "ray"

    def __init__(self, workers: int | None = None, threads: int = 1, address: str | None = None,
                 max_retries: int = MAX_RETRIES) -> None:  # fmt: skip
        self.ray = _import_ray()  # fail before any training when Ray is missing
        self.workers, self.threads, self.address = workers, threads, address
        self.max_retries = max_retries
        self.retried = None  # Ray retries inside the cluster and does not count for us

    def run(self, jobs: Sequence[Any], on_result: OnResult) -> None:
        """Submit every job as a Ray task and hand each result to ``on_result`` as it ends;
        ``ray.init`` (and ``ray.shutdown`` after) unless Ray is already initialized."""
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            cpus = None if self.address or not self.workers else self.workers * self.threads
            ray.init(address=self.address, num_cpus=cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)  # fmt: skip
        try:
            task = ray.remote(num_cpus=self.threads, max_retries=self.max_retries,
                              retry_exceptions=True)(run_job)  # fmt: skip
            data_refs = self._put_datasets(jobs)
            refs = {task.remote(j.config, data_refs[_data_key(j.config)]): j for j in jobs}
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                job = refs.pop(ready[0])
                try:
                    records = ray.get(ready[0])
                except Exception as e:  # RayTaskError, WorkerCrashedError, ...
                    tries = 1 + self.max_retries
                    on_result(job, None, f"failed {tries} times; last error: {error_line(e)}")
                else:
                    on_result(job, records, None)
        finally:
            if started_here:
                ray.shutdown()

    def _put_datasets(self, jobs: Sequence[Any]) -> dict[tuple, Any]:
        """Load each distinct dataset once and put it into the object store once."""
        refs: dict[tuple, Any] = {}
        for job in jobs:
            key = _data_key(job.config)
            if key not in refs:
                refs[key] = self.ray.put(load(key[0], data_dir=key[1]))
        return refs


def _data_key(config: dict[str, Any]) -> tuple:
    return (config["dataset"], config.get("data_dir"))
