"""Run a sweep: plan jobs, skip finished ones, hand the rest to a backend, store results.

Only this driver writes the sweep's results store (one :class:`~initlab.results.store.Store`,
runs keyed by ``RunSpec.key()``): each job's records are stored as the job finishes, so a
killed sweep loses at most the jobs in flight, and rerunning it trains only what is missing.
A job that keeps failing is stored as runs with status "failed" and its error; rerunning the
sweep tries those again.

>>> from initlab.experiments.sweep import load_sweep
>>> result = run_sweep(load_sweep("examples/sweep-small.toml"), workers=2,
...                    out="runs/sweep-small")  # doctest: +SKIP
>>> result.trained_jobs, result.failed_jobs  # doctest: +SKIP
(8, 0)
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from initlab.atomic import atomic_write_json
from initlab.experiments.backends import MAX_RETRIES, get_backend
from initlab.experiments.sweep import Job, Sweep
from initlab.report.sweep_report import render_sweep_report
from initlab.results.records import RunRecord
from initlab.results.store import Store, describe_environment
from initlab.results.sweep_summary import CellBest, best_per_cell, sweep_summary_json

# on_event(job, status, done_so_far, total): status is "finished" or "failed"
EventFn = Callable[[Job, str, int, int], None]
SUMMARY_NAME = "summary.json"


@dataclass
class SweepResult:
    """What a sweep produced: the store's folder, the per-cell ranking and the job counts."""

    run_dir: Path
    jobs: int
    trained_jobs: int = 0  # jobs that finished training in this call
    failed_jobs: int = 0  # jobs recorded as failed in this call
    reused_jobs: int = 0  # jobs already finished in the store
    retried: int | None = 0  # retries the backend made (None: not counted by the backend)
    rows: list[CellBest] = field(default_factory=list)
    report_path: Path | None = None
    errors: dict[str, str] = field(default_factory=dict)  # job label -> error


def default_run_dir(sweep: Sweep) -> Path:
    """``runs/sweep-<hash of the resolved sweep>``: the same sweep finds its runs again."""
    blob = json.dumps(sweep.resolved(), sort_keys=True, default=str)
    return Path("runs") / f"sweep-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def run_sweep(
    sweep: Sweep,
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    out: str | Path | None = None,
    threads_per_job: int = 1,
    max_retries: int = MAX_RETRIES,
    report: bool = True,
    on_event: EventFn | None = None,
) -> SweepResult:
    """Train every job of ``sweep`` not yet in the store at ``out``; summarize and report."""
    runner = get_backend(backend, workers=workers, threads=threads_per_job, address=address,
                         max_retries=max_retries)  # fmt: skip
    jobs = sweep.plan(threads=threads_per_job)
    run_dir = Path(out) if out is not None else default_run_dir(sweep)
    result = SweepResult(run_dir=run_dir, jobs=len(jobs))
    with Store.open(run_dir) as store:
        store.write_config(sweep.resolved())
        store.put_meta("sweep_plan", [_plan_entry(job) for job in jobs])
        if sweep.name:
            store.put_meta("name", sweep.name)
        done = store.finished_keys()
        todo = [job for job in jobs if not set(job.keys) <= done]
        result.reused_jobs = len(jobs) - len(todo)
        if todo:
            store.put_meta("environment", _environment(runner, threads_per_job, sweep))

            def on_result(job: Job, records: list[dict] | None, error: str | None) -> None:
                if records is not None:
                    for d in records:
                        store.put_run(RunRecord.from_dict(d))
                    result.trained_jobs += 1
                else:
                    for rc in job.compare_config_runs():
                        store.put_run(RunRecord(config=rc, status="failed", error=error))
                    result.failed_jobs += 1
                    result.errors[job.label()] = str(error)
                if on_event is not None:
                    status = "finished" if records is not None else "failed"
                    n = result.trained_jobs + result.failed_jobs
                    on_event(job, status, n, len(todo))

            runner.run(todo, on_result)
            result.retried = runner.retried
            store.put_meta("retries", result.retried)
        records = {r.key: r for r in store.runs()}
        result.rows = best_per_cell(store.get_meta("sweep_plan"), records)
    atomic_write_json(run_dir / SUMMARY_NAME, sweep_summary_json(result.rows))
    if report:
        result.report_path = _render(run_dir)
    return result


def _plan_entry(job: Job) -> dict[str, Any]:
    runs = job.compare_config_runs()
    return {"id": job.id, "cell": job.cell, "keys": list(job.keys),
            "inits": [rc.init for rc in runs]}  # fmt: skip


def _environment(runner: Any, threads: int, sweep: Sweep) -> dict[str, Any]:
    return describe_environment(
        torch_version=str(torch.__version__),
        device=str(sweep.fixed.get("device", "cpu")),
        backend=runner.name,
        workers=runner.workers,
        threads_per_job=threads,
        cpu=platform.processor() or platform.machine(),
    )


def _render(run_dir: Path) -> Path:
    return render_sweep_report(run_dir)
