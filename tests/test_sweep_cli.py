"""``initlab sweep`` errors that come before any training: one line, exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from initlab.cli import main
from sweep_util import write_sweep

NO_RAY = """
import sys
sys.modules["ray"] = None  # makes `import ray` raise ImportError, as when it is not installed
from initlab.cli import main
main(["sweep", sys.argv[1], "--backend", "ray", "--out", sys.argv[2]])
"""


def test_backend_ray_without_ray_says_how_to_install_it(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", NO_RAY, str(write_sweep(tmp_path)), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'initlab[ray]'" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()  # nothing was planned into a store or trained


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra_args", "toml", "needle"),
    [
        (["--address", "auto"], "", "use it with --backend ray"),
        (["--backend", "dask"], "", "'dask' is not one of 'local', 'ray'"),
        ([], "[axes.more]\n", "Unknown axis 'axes.more'"),
        (["--device", "tpu"], "", "Unknown device 'tpu'; allowed: cpu, cuda, mps"),
    ],
)
def test_bad_options_and_files_are_one_line(tmp_path, capsys, extra_args, toml, needle):
    path = write_sweep(tmp_path, extra=toml)
    code, err = run_cli(["sweep", str(path), "--out", str(tmp_path / "o"), *extra_args], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
