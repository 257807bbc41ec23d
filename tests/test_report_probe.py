"""Probe data in the report: per-layer std from real probe records, histograms, findings."""

from __future__ import annotations

import math
import statistics

import pytest

from fake_runs import make_records, real_probe
from initlab.probe import histogram_experiment
from initlab.report.content import open_and_collect
from initlab.report.probe_plots import layer_table
from initlab.report.render import report_html
from initlab.results.probe_records import ProbeRecord
from initlab.results.store import Store

INITS = ("normal:std=0.01", "he_normal")


@pytest.fixture(scope="module")
def probed_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("probed")
    records = make_records(inits=INITS, seeds=2, steps=100)
    probes = {}
    with Store.open(run_dir) as store:
        for r in records:
            store.put_run(r)
            probes[r.key] = real_probe(r.config.init, r.config.seed)
            store.put_probe(probes[r.key], run_key=r.key)
        store.put_probe(
            histogram_experiment("tanh", "normal:std=1", layers=3, width=32, samples=200)
        )
    return run_dir, records, probes


def test_probe_records_come_back_as_dataclasses(probed_run):
    run_dir, records, probes = probed_run
    with Store.open(run_dir) as store:
        back = store.probes(run_key=records[0].key)
    assert len(back) == 1 and isinstance(back[0], ProbeRecord)
    assert back[0] == probes[records[0].key]


def test_layer_table_is_the_mean_over_seeds_of_the_probed_std(probed_run):
    run_dir, records, probes = probed_run
    groups = {i: [probes[r.key] for r in records if r.config.init == i] for i in INITS}
    rows = layer_table(groups)
    he = [row for row in rows if row["group"] == "he_normal"]
    assert len(he) == 3  # the three ReLU outputs
    for k, row in enumerate(he):
        seeds = [p.of_kind("activation")[k] for p in groups["he_normal"]]
        assert row["act_std"] == pytest.approx(statistics.fmean(x.std for x in seeds), rel=1e-12)
        assert row["grad_std"] == pytest.approx(statistics.fmean(x.grad_std for x in seeds))
    tiny = [row for row in rows if row["group"] == "normal:std=0.01"]
    # std 0.01 shrinks the signal by about 0.01 * sqrt(fan_in / 2) per layer: it collapses.
    assert tiny[-1]["act_std"] < 1e-3 * he[-1]["act_std"]
    assert all(math.isfinite(row["act_std"]) for row in rows)


def test_report_shows_probe_figures_table_and_findings(probed_run):
    run_dir, _, _ = probed_run
    content = open_and_collect(run_dir)
    titles = [img.title for img in content.probe_images]
    assert titles[0] == "Activation and gradient std by layer"
    assert "Activation histograms per layer" in titles  # the HistogramRun grid
    assert "Activation histograms: he_normal" in titles
    assert sum(t.startswith("Activation histograms") for t in titles) == 3
    assert len(content.layer_rows) == 6
    probe_lines = [line for line in content.diagnosis if "(probe" in line]
    assert any(line.startswith("normal:std=0.01 (probe, 2 of 2 seeds): ") for line in probe_lines)
    assert len(probe_lines) == len(set(probe_lines))
    # the HistogramRun's std and gradient std by layer (issue 19) is a PNG beside its grid
    assert "Activation and gradient std by layer, per activation and init" in titles
    html = report_html(content)
    assert html.count("data:image/png;base64,") == 4
    assert "Per-layer numbers" in html
