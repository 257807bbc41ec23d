"""Shared fixtures: real data location and deterministic generators."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# The Makefile and .ci/run set INITLAB_DATA; running pytest by hand gets the same default.
os.environ.setdefault("INITLAB_DATA", str(SHARED_DATA))


@pytest.fixture
def gen():
    """A fresh generator seeded 0: every random draw in a test comes from one of these."""
    return torch.Generator().manual_seed(0)


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second thread; on a busy machine OpenMP waits dominate.
    Test modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def run_cli(capsys):
    """Run ``initlab ARGS`` that must exit; returns (exit code, stdout, stderr)."""
    from initlab.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as e:
            main(args)
        out = capsys.readouterr()
        return e.value.code, out.out, out.err

    return run
