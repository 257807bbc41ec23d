"""sweep-scaling: the example sweep (examples/sweep-small.toml, 72 trainings in 8 stacked
jobs on digits) with the local backend, 1 worker then 2 workers, one thread per job.

Times are wall clock of the whole sweep, worker start-up (spawn + importing torch) included,
as a user sees it. Prints both times and the speedup (target >= 1.6x with 2 workers; it
needs 2 otherwise idle cores). Both stores must hold the same numbers (checked).

    python -m bench sweep-scaling [--full]      (or: python -m bench.sweep_scaling [--quick])
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Result
from initlab.experiments.sweep import load_sweep
from initlab.experiments.sweep_run import run_sweep
from initlab.results.store import Store

NAME = "sweep-scaling"
TARGET = ">= 1.6x with 2 workers, start-up < 10% of a job"
SWEEP = Path(__file__).resolve().parents[1] / "examples" / "sweep-small.toml"
QUICK_STEPS = 300  # the file's own steps; quick mode keeps them
JOB_OVER_STARTUP = 12  # full mode: a job trains >= 12x a worker's start-up (start-up < 10%)


def _timed(sweep, workers: int, out: Path) -> float:
    started = time.perf_counter()
    result = run_sweep(sweep, workers=workers, out=out, report=False)
    elapsed = time.perf_counter() - started
    assert result.trained_jobs == result.jobs and result.failed_jobs == 0
    return elapsed


STARTUP = (
    "import torch, initlab.experiments.sweep_run\n"
    "torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # torch.optim imports dynamo"
)


def startup_seconds() -> float:
    """What a fresh worker pays before its first step: spawn, imports, the first optimizer."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", STARTUP], check=True)
    return time.perf_counter() - started


def job_seconds(out: Path) -> float:
    """Median training time of a job (its stack's wall time, from the store)."""
    with Store.open(out, create=False) as store:
        return statistics.median({r.wall_time for r in store.runs()})


def _max_difference(a: Path, b: Path) -> float:
    with Store.open(a, create=False) as sa, Store.open(b, create=False) as sb:
        ra, rb = {r.key: r for r in sa.runs()}, {r.key: r for r in sb.runs()}
    assert set(ra) == set(rb)
    worst = 0.0
    for key, x in ra.items():
        for name, series in x.metrics.items():
            for u, v in zip(series.values, rb[key].metrics[name].values, strict=True):
                if not (math.isnan(u) and math.isnan(v)):
                    worst = max(worst, abs(u - v))
    return worst


def full_steps(sweep, start: float) -> int:
    """Steps per job for full mode: from a quick sweep's per-step job time, enough steps that
    a job trains JOB_OVER_STARTUP times a worker's start-up (the issue's "< 10%" condition)."""
    with tempfile.TemporaryDirectory() as tmp:
        _timed(sweep, 1, Path(tmp) / "probe")
        per_step = job_seconds(Path(tmp) / "probe") / sweep.fixed["steps"]
    steps = math.ceil(JOB_OVER_STARTUP * start / per_step / 100) * 100
    return max(steps, QUICK_STEPS)


def run(quick: bool = True) -> Result:
    sweep = load_sweep(SWEEP)
    start = startup_seconds()
    if not quick:
        steps = full_steps(sweep, start)
        sweep.fixed = {**sweep.fixed, "steps": steps, "eval_every": steps // 4}
    with tempfile.TemporaryDirectory() as tmp:
        one = _timed(sweep, 1, Path(tmp) / "w1")
        two = _timed(sweep, 2, Path(tmp) / "w2")
        diff = _max_difference(Path(tmp) / "w1", Path(tmp) / "w2")
        job = job_seconds(Path(tmp) / "w1")
    speedup = one / two
    print(f"   1 worker {one:.1f} s, 2 workers {two:.1f} s: speedup {speedup:.2f}x "
          f"(max |difference| of results {diff:.3g})")  # fmt: skip
    return Result(
        initlab=two,
        baseline=one,
        ratio=speedup,
        met=speedup >= 1.6 and start / (start + job) < 0.10,
        notes=[f"{sweep.runs()} trainings in {len(sweep.plan())} jobs, "
               f"steps {sweep.fixed['steps']}; 1 vs 2 workers differ by {diff:.3g}",
               f"a job trains {job:.1f} s (median); a worker's start-up {start:.1f} s "
               f"({start / (start + job):.0%} of start-up + one job)"],
    )  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_scaling")
    parser.add_argument("--quick", action="store_true")
    run(quick=parser.parse_args().quick)
