"""Histogram figures: drawn from plain records only, byte-identical for the same data."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import pytest

from initlab.probe import histogram_experiment
from initlab.report.histograms import histogram_png, report_figures, std_png
from initlab.results.probe_records import HistogramRun, ProbeRecord

SRC = Path(__file__).resolve().parents[1] / "src" / "initlab"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def runs() -> list[HistogramRun]:
    return [histogram_experiment(a, i, layers=3, width=32, samples=200)
            for a in ("sigmoid", "relu") for i in ("normal:std=1", "lecun_normal")]  # fmt: skip


def test_png_is_deterministic_and_carries_no_software_tag(runs):
    first = histogram_png(runs[:1])
    rebuilt = [HistogramRun.from_dict(r.to_dict()) for r in runs[:1]]  # e.g. from a store
    assert histogram_png(rebuilt) == first
    assert b"matplotlib" not in first and b"Software" not in first
    assert histogram_png(runs[1:2]) != first


def test_single_run_is_a_row_and_several_runs_a_grid(runs):
    w1, h1 = _png_size(histogram_png(runs[:1]))
    w4, h4 = _png_size(histogram_png(runs))
    assert w1 > 2 * h1  # three panels side by side
    assert h4 > 3 * h1  # four rows


def test_report_figures_draws_only_histogram_runs(runs):
    assert report_figures([ProbeRecord()]) == []
    # issue 19: the per-layer activation and gradient std comes first, then the grid
    [(std_title, std_mime, std_data), (title, mime, data)] = report_figures(
        [ProbeRecord(), *runs[:2]]
    )
    assert std_mime == "image/png" and std_data == std_png(runs[:2]) and "std" in std_title
    assert mime == "image/png" and data == histogram_png(runs[:2]) and "histogram" in title.lower()


@pytest.mark.parametrize("path", ["results/probe_records.py", "report/histograms.py"])
def test_plain_record_and_report_modules_never_import_torch(path):
    tree = ast.parse((SRC / path).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert "torch" not in imported
    assert not any(m.startswith(("initlab.probe", "initlab.initializers")) for m in imported)
