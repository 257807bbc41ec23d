"""Kill a real ``initlab compare`` process with SIGKILL at random moments, resume, compare.

The issue's bar: after >= 5 random SIGKILLs and a final resume, every run finished and all
recorded metrics except wall times equal those of an uninterrupted run (same seeds, same
thread count), and the store passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from initlab.results.store import Store
from initlab.train.checkpoint import load_checkpoint

# 10000 steps of a small MLP on digits: ~15 s of training after ~4 s of imports on one
# thread, with a checkpoint every 1000 steps (compare uses max(steps // 10, 50)).
ARGS = [
    "compare", "--dataset", "digits", "--arch", "mlp:32x2", "--inits", "lecun_normal,he_normal",
    "--seeds", "2", "--steps", "10000", "--eval-every", "20", "--batch-size", "32",
    "--lr", "0.05", "--threads", "1", "--no-report",
]  # fmt: skip
KILLS = 5
KILL_SEED = 11  # the kill moments are random, but the same on every test run

PROGRESS = re.compile(r".*: step \d+/\d+( \(\d+%\))?, \S+ steps/s$")


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "initlab", *ARGS, "--out", str(out)]


def _env() -> dict[str, str]:
    return {**os.environ, "INITLAB_OFFLINE": "1"}


def _same(a: float | None, b: float | None) -> bool:
    """Exact equality, NaN equal to NaN (a diverged run records NaN losses)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _records(out: Path) -> dict[str, object]:
    with Store.open(out, create=False) as store:
        assert store.integrity_check() == "ok"
        return {r.key: r for r in store.runs()}


def _checkpoint_step(out: Path) -> int | None:
    paths = sorted((out / "checkpoints").glob("*.safetensors")) if out.exists() else []
    return max((load_checkpoint(p)[1]["step"] for p in paths), default=None)


def _wait_for_new_checkpoint(proc: subprocess.Popen, out: Path) -> None:
    """Block until the running ``proc`` wrote a checkpoint newer than the one there now."""
    before = _checkpoint_step(out) or 0
    deadline = time.monotonic() + 120
    while (_checkpoint_step(out) or 0) <= before:
        assert proc.poll() is None and time.monotonic() < deadline, "no new checkpoint"
        time.sleep(0.02)


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c_once_training_moved_on(out: Path, cwd: Path) -> None:
    """SIGINT (Ctrl-C) a resumed run once it wrote a newer checkpoint: status 130, one line
    that says to rerun the same command, and (checked by the caller) an exact resume."""
    # a terminal's Ctrl-C: SIGINT handled as by default, even when this test runs in a
    # background job (which starts its children with SIGINT ignored, so Python would not
    # turn it into KeyboardInterrupt and the run would just go on)
    proc = subprocess.Popen(_command(out), env=_env(), cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_as_in_a_terminal)  # fmt: skip
    _wait_for_new_checkpoint(proc, out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    # stderr is a pipe: the progress lines (`...: step N/M (P%), R steps/s`) come first
    said = [line for line in err.splitlines() if line.strip() and not PROGRESS.match(line)]
    assert "Traceback" not in err and len(said) == 1, err
    assert "rerun the same command to resume" in err


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path):
    """Five SIGKILLs at random moments and one Ctrl-C, then a final resume: exact results."""
    full, killed = tmp_path / "full", tmp_path / "killed"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import initlab.cli, torch, sklearn.datasets"],
                   check=True)  # fmt: skip
    startup = time.perf_counter() - started  # imports only; the run's start-up is longer
    started = time.perf_counter()
    subprocess.run(_command(full), env=_env(), cwd=tmp_path, check=True, capture_output=True)
    training = max(time.perf_counter() - started - startup, 1.0)

    rng = random.Random(KILL_SEED)
    kills, attempts, moments = 0, 0, []
    while kills < KILLS:
        attempts += 1
        assert attempts <= 4 * KILLS, f"only {kills} kills landed in {attempts} attempts"
        proc = subprocess.Popen(
            _command(killed), env=_env(), cwd=tmp_path,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # A fifth of the kills land during start-up (imports, data, store); the others a
        # random time after the run wrote its next checkpoint: anywhere in the following
        # checkpoint interval and a bit beyond (timing alone would depend on machine load).
        if rng.random() < 0.2:
            delay = rng.uniform(0.2, startup)
            when = f"{delay:.2f} s after start"
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                pass
        else:
            delay = rng.uniform(0.0, 1.2 * training / 10)
            _wait_for_new_checkpoint(proc, killed)
            when = f"{delay:.2f} s after checkpoint {_checkpoint_step(killed)}"
            time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            moments.append(when)
            if (killed / "results.sqlite").exists():  # the store opens after every kill
                _records(killed)
        else:
            pytest.fail(f"the run finished before its kill at {when}; lengthen it")
    _ctrl_c_once_training_moved_on(killed, tmp_path)
    subprocess.run(_command(killed), env=_env(), cwd=tmp_path, check=True, capture_output=True)

    want, got = _records(full), _records(killed)
    assert set(got) == set(want) and len(want) == 4
    for key, a in want.items():
        b = got[key]
        assert a.status == b.status == "finished"
        for name in ("final_train_loss", "test_accuracy", "test_loss", "steps_to_target"):
            assert _same(getattr(a, name), getattr(b, name)), (key, name)
        assert a.diverged_step == b.diverged_step and a.error == b.error
        assert set(a.metrics) == set(b.metrics)
        for name, series in a.metrics.items():
            other = b.metrics[name]
            assert series.steps == other.steps, (key, name)
            bad = [i for i, (x, y) in enumerate(zip(series.values, other.values, strict=True))
                   if not _same(x, y)]  # fmt: skip
            assert not bad, f"{name} of {a.config.init} seed {a.config.seed} differs at {bad[:5]}"
    # The checkpoint of the finished stack is removed once its runs are stored.
    assert not list((killed / "checkpoints").glob("*.safetensors"))
    print(f"startup {startup:.1f} s, training {training:.1f} s; {kills} kills in {attempts} "
          f"attempts; kill moments: {moments}")  # fmt: skip
