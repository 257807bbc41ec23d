"""SIGKILL one worker process of a running ``initlab sweep``: the job it ran is retried, the
sweep completes with every run equal to an uninterrupted sweep, and a rerun trains nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sweep_util import max_difference, records, write_sweep

pytestmark = pytest.mark.slow
STEPS = 400  # a few seconds per job, so the kill lands while jobs are running


def _command(sweep: Path, out: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "initlab", "sweep", str(sweep), "--workers", str(workers),
            "--out", str(out), "--no-report"]  # fmt: skip


def _workers(parent: int) -> list[int]:
    """Pool worker processes (spawned children) of ``parent``, not its resource tracker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return sorted(found)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_killing_a_worker_mid_sweep_loses_nothing(tmp_path):
    sweep = write_sweep(tmp_path, steps=STEPS)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(_command(sweep, killed, 2), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    # wait until the first job is stored: both workers are up and busy with the next jobs
    first = proc.stderr.readline()
    assert "job 1/8 finished" in first, first + proc.stderr.read()
    workers = _workers(proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "8 trained, 0 reused, 0 failed" in out and "retries" in out, out
    assert "job 8/8 finished" in err and "failed" not in err.replace("0 failed", "")
    assert len(records(killed)) == 72

    rerun = subprocess.run(_command(sweep, killed, 2), capture_output=True, text=True, check=True)
    assert "0 trained, 8 reused" in rerun.stdout and "nothing trained" in rerun.stdout

    subprocess.run(_command(sweep, clean, 1), capture_output=True, text=True, check=True)
    diff = max_difference(killed, clean)
    print(f"killed-and-retried vs uninterrupted: max |difference| {diff:.3g}")
    assert diff <= 1e-5
