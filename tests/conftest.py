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
