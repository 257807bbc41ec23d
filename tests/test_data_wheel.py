"""The built wheel (not only the editable install) ships the MNIST files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from initlab.data.datasets import MNIST_FILES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_bundled_mnist(tmp_path):
    # Build from a copy, so the build leaves nothing behind in the working tree.
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    for name in ("pyproject.toml", "README.md", "DATA_LICENSES"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tree / name)
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(tree)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("initlab-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for f in MNIST_FILES:
            member = f"initlab/data/mnist/{f.stem}.gz"
            assert member in names
            assert zf.getinfo(member).file_size == (ROOT / "src" / member).stat().st_size
