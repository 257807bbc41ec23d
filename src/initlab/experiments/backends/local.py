"""The local backend: a pool of worker processes on this machine (the default).

Workers are started with ``spawn`` (never ``fork``: a forked torch can deadlock) and set
their torch thread count once. A job that raises is resubmitted; a worker that dies (e.g.
SIGKILL) breaks a ``ProcessPoolExecutor``, so the pool is rebuilt and every unfinished job
resubmitted. The pool cannot say which worker ran which job, so workers report each job they
start on a queue; a break is charged to the jobs started and not finished (at most one per
worker). A job charged more than ``max_retries`` times is handed back with its error.

>>> LocalBackend(workers=2, threads=1).workers
2
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch

from initlab.experiments.backends.base import MAX_RETRIES, OnResult, error_line, run_job

_started: Any = None  # in a worker: the queue it reports job starts on


def _init_worker(threads: int, started: Any) -> None:
    global _started
    torch.set_num_threads(threads)
    _started = started


def _work(job_id: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    _started.put(job_id)
    return run_job(config)


class LocalBackend:
    """``workers`` processes (default: cores // threads), each job on ``threads`` threads."""

    name = "local"

    def __init__(self, workers: int | None = None, threads: int = 1,
                 max_retries: int = MAX_RETRIES) -> None:  # fmt: skip
        self.workers = workers or max(1, (os.cpu_count() or 1) // threads)
        self.threads = threads
        self.max_retries = max_retries
        self.retried = 0
        self.pool_restarts = 0

    def run(self, jobs: Sequence[Any], on_result: OnResult) -> None:
        """Run every job, calling ``on_result`` as each one finishes or finally fails."""
        ctx = multiprocessing.get_context("spawn")
        todo = {job.id: job for job in jobs}
        failures = dict.fromkeys(todo, 0)
        while todo:
            started = ctx.Queue()
            workers = min(self.workers, len(todo))
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(self.threads, started)) as pool:  # fmt: skip
                broken = self._drain(pool, todo, failures, on_result)
            if broken:
                self.pool_restarts += 1
                self._charge_break(broken, _drain_queue(started), todo, failures, on_result)
            started.close()

    def _drain(self, pool, todo, failures, on_result) -> str | None:
        """Collect results until done or the pool breaks; return the break's message."""
        pending: dict[Future, Any] = {pool.submit(_work, j.id, j.config): j for j in todo.values()}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                exc = future.exception()
                if isinstance(exc, BrokenProcessPool):
                    return error_line(exc)
                if exc is None:
                    del todo[job.id]
                    on_result(job, future.result(), None)
                elif self._retry(job, error_line(exc), todo, failures, on_result):
                    pending[pool.submit(_work, job.id, job.config)] = job
        return None

    def _charge_break(self, message, started, todo, failures, on_result) -> None:
        # Jobs a worker started and nobody finished were in flight when the pool broke.
        suspects = [todo[i] for i in dict.fromkeys(started) if i in todo] or list(todo.values())
        for job in suspects:
            self._retry(job, f"worker process died ({message})", todo, failures, on_result)

    def _retry(self, job, error: str, todo, failures, on_result) -> bool:
        """Count a failure; True to run the job again, else report it as failed."""
        failures[job.id] += 1
        if failures[job.id] <= self.max_retries:
            self.retried += 1
            return True
        del todo[job.id]
        on_result(job, None, f"failed {failures[job.id]} times; last error: {error}")
        return False


def _drain_queue(q: Any) -> list[str]:
    out = []
    while True:
        try:
            out.append(q.get(timeout=0.2))
        except queue.Empty:
            return out
