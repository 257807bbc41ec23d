"""The coordinate check: SP under Adam grows with width, μP does not; records, CLI, report."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from initlab.cli import cli, main
from initlab.experiments.coord_check import coord_check
from initlab.results.width_records import CoordCheck, coord_diagnosis, growing_layers

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def checks():
    """SP and μP, Adam lr 1e-2, widths 64 and 1024 on MNIST, 5 steps, 3 seeds (~1 s each)."""
    return {
        p: coord_check(widths=[64, 1024], parametrization=p, base_width=64, optimizer="adam",
                       lr=1e-2, steps=5, seeds=3, dataset="mnist", threads=1).record
        for p in ("sp", "mup")
    }  # fmt: skip


def test_layers_and_kinds_of_the_mlp(checks):
    cc = checks["mup"]
    assert cc.layers == ["1", "3", "5"] and cc.kinds == ["input", "hidden", "output"]
    assert cc.steps == [0, 1, 2, 3, 4, 5] and len(cc.values) == 2 and len(cc.values[0]) == 3


def test_sp_adam_hidden_and_readout_grow_with_width(checks):
    cc = checks["sp"]
    assert max(cc.growth("3", t) for t in cc.steps) > 2.0
    assert max(cc.growth("5", t) for t in cc.steps) > 5.0
    flagged = {layer for layer, _, _ in growing_layers(cc)}
    assert {"3", "5"} <= flagged
    assert any("3 (hidden) grows with width" in line for line in coord_diagnosis(cc))


def test_mup_adam_keeps_every_layer_within_2x(checks):
    cc = checks["mup"]
    for t in cc.steps:
        assert cc.spread("1", t) < 2.0 and cc.spread("3", t) < 2.0, t
        for layer in cc.layers:
            assert cc.growth(layer, t) < 2.0, (layer, t)
    assert growing_layers(cc) == []
    assert cc.growth("5", 0) < 0.2  # μP's readout is smaller at init, by design


def test_step_zero_is_the_same_network_at_the_base_width(checks):
    # At the base width μP and SP coincide: same init, same first forward pass.
    sp, mup = checks["sp"], checks["mup"]
    assert sp.values[0] == mup.values[0]


def test_record_round_trips_through_the_store(tmp_path):
    from initlab.report.width_report import coord_from_store
    from initlab.results.store import Store

    res = coord_check(widths=[16, 32], steps=1, seeds=1, dataset="blobs", threads=1, out=tmp_path)
    with Store.open(tmp_path, create=False) as store:
        again = coord_from_store(store)
    assert again == res.record
    html = res.report_path.read_text()
    assert "coordinate check" in html.lower() and "data:image/svg+xml" in html


def test_growth_and_slope_of_a_hand_made_record():
    cc = CoordCheck("sp", "adam", 0.01, 64, "a", "d", widths=[64, 256, 1024], steps=[0], seeds=1,
                    layers=["h"], kinds=["hidden"],
                    values=[[[[1.0]]], [[[4.0]]], [[[16.0]]]])  # fmt: skip
    assert cc.growth("h", 0) == 16.0 and cc.slope("h", 0) == pytest.approx(1.0)
    cc.values[2][0][0][0] = math.nan  # a diverged width counts as growing
    assert cc.spread("h", 0) == math.inf and growing_layers(cc)[0][0] == "h"


def test_cli_runs_and_writes_a_report(tmp_path):
    res = CliRunner().invoke(cli, [
        "coord-check", "--widths", "16,32", "--steps", "1", "--seeds", "1", "--dataset",
        "blobs", "--parametrization", "sp", "--threads", "1", "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "run folder" in res.output and (tmp_path / "report.html").is_file()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--widths", "64"], "two or more positive integers"),
        (["--widths", "64,abc"], "two or more positive integers"),
        (["--parametrization", "ntk"], "Unknown parametrization 'ntk'"),
        (["--optimizer", "rmsprop"], "Unknown optimizer"),
        (["--arch", "mlp:100x2"], "factory taking width="),
        (["--lr", "0"], "--lr must be > 0"),
        (["--seeds", "0"], "must be >= 1"),
    ],
)
def test_bad_cli_input_is_one_line_and_exit_2(args, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(["coord-check", *args])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert words in err and err.count("\n") == 1 and err.startswith("Error: ")


_NO_TORCH = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
from initlab.results.store import Store
from initlab.results.width_records import CoordCheck
from initlab.report.width_report import render_width_report
cc = CoordCheck("mup", "adam", 0.01, 64, "a", "d", [64, 128], [0, 1], 1, ["1"], ["input"],
                [[[[1.0], [1.1]]], [[[1.0], [1.2]]]])
with Store.open(sys.argv[1]) as s:
    s.put_probe(cc)
print(render_width_report(sys.argv[1]))
"""


def test_width_report_builds_with_torch_blocked(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, str(tmp_path)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "report.html").is_file()
