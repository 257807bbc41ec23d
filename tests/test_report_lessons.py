"""Issue 19: the report reads at a glance: own x ranges, labelled axes, numbers off the bars,
gradients beside activations, 1-based layer names with advice and healthy lines, the target
stated, the best-step star on its curve, linked pages, and a preset folder's own page."""

from __future__ import annotations

import re

import pytest
from matplotlib.figure import Figure

from fake_runs import make_record, make_records
from initlab.probe import histogram_experiment, probe
from initlab.probe.probe_report import ProbeReport
from initlab.report import plots
from initlab.report.histograms import grid_figure, layers_figure, panel_layers, std_figure
from initlab.report.pages import page_kind, render_page
from initlab.report.render import render_report
from initlab.results.probe_records import healthy, layer_labels
from initlab.results.store import Store

SMALL = {"layers": 3, "width": 32, "samples": 200}


@pytest.fixture(scope="module")
def runs():
    return [
        histogram_experiment(a, i, **SMALL)
        for a in ("sigmoid", "relu")
        for i in ("normal:std=1", "normal:std=0.01", "he_normal")
    ]


def test_every_panel_has_its_own_x_range_labelled_axes_and_stats_off_the_bars(runs):
    fig = grid_figure(runs)
    axes = [ax for ax in fig.axes if ax.axison]
    assert len(axes) == len(runs) * SMALL["layers"]
    for r, run in enumerate(runs):
        row = axes[r * 3 : (r + 1) * 3]
        for ax, layer in zip(row, panel_layers(run.probe), strict=True):
            h = layer.histogram
            assert ax.get_xlim() == pytest.approx((h.lo, h.hi))  # not the row's union
            assert not ax.texts  # no stats box drawn over the bars
            assert f"std {layer.std:.2g}" in ax.get_title()
            assert f"grad std {layer.grad_std:.2g}" in ax.get_title()
        assert "fraction" in row[0].get_ylabel() and run.activation in row[0].get_ylabel()
    # ReLU under N(0, 1): the spread grows ~x5 a layer, so the panels' ranges differ a lot
    relu = runs.index(next(r for r in runs if (r.activation, r.init) == ("relu", "normal")))
    his = [ax.get_xlim()[1] for ax in axes[relu * 3 : relu * 3 + 3]]
    assert his[2] > 10 * his[0]
    assert all(ax.get_xlabel() == "output value" for ax in axes[-3:])  # bottom row


def test_panel_titles_and_findings_use_the_same_layer_names(runs):
    collapsed = next(r for r in runs if (r.activation, r.init) == ("sigmoid", "normal:std=0.01"))
    [finding] = [f for f in collapsed.probe.findings if f.kind == "collapsed"]
    label = layer_labels(collapsed.probe)[finding.layer]
    assert re.fullmatch(r"layer [1-3] \(sigmoid\)", label)
    assert label in finding.message and f"'{finding.layer}'" not in finding.message
    titles = [ax.get_title() for ax in layers_figure(collapsed).axes]
    assert any(t.startswith(label) for t in titles)


def test_gradient_std_is_recorded_and_drawn_beside_activation_std(runs):
    fig = std_figure(runs)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles.count("relu: gradient std") == 1 and "sigmoid: activation std" in titles
    assert all(x.grad_std is not None for x in runs[0].activation_layers())
    forward_only = histogram_experiment("relu", "he_normal", loss=None, **SMALL)
    assert forward_only.activation_layers()[0].grad_std is None
    titles = [ax.get_title() for ax in std_figure([forward_only]).axes]
    assert titles == ["relu: activation std"]  # no empty gradient row


def test_healthy_lines_only_where_no_finding_says_otherwise(runs):
    he = next(r for r in runs if (r.activation, r.init) == ("relu", "he_normal"))
    assert he.probe.findings == []
    lines = healthy(he.probe)
    stds = [x.std for x in he.activation_layers()]
    assert f"within {min(stds):.3g}..{max(stds):.3g} across 3 layers" in lines[0]
    assert any("gradient norms are balanced" in line for line in lines)
    exploding = next(r for r in runs if (r.activation, r.init) == ("relu", "normal"))
    assert "exploding" in [f.kind for f in exploding.probe.findings]
    assert not any("std stays" in x or "gradient" in x for x in healthy(exploding.probe))


def test_probe_report_prints_advice_healthy_lines_and_layer_numbers(runs, capsys):
    from rich.console import Console

    Console(width=200).print(ProbeReport(runs[0].probe))  # sigmoid, N(0, 1)
    out = capsys.readouterr().out
    assert "saturated:" in out and "Try: smaller weights" in out and "healthy:" not in out
    assert re.search(r"│ 3\s+│ 5\s+│ sigmoid", out)  # the '#' column: module '5' is layer 3
    Console(width=200).print(ProbeReport(runs[-1].probe))  # relu, he_normal
    out = capsys.readouterr().out
    assert "no warning" in out and "healthy: activation std stays within" in out


def _histogram_folder(path, runs):
    with Store.open(path) as store:
        store.put_meta("name", "activation-histograms")
        store.put_meta("config", {"layers": 3})
        store.put_meta("diagnosis", ["a lesson the preset wrote"] + [
            f"{r.activation} / {r.init}: {f.message}" for r in runs for f in r.probe.findings
        ])  # fmt: skip
        store.put_probes(runs)


def test_preset_histogram_folder_gets_its_own_page(tmp_path, runs):
    _histogram_folder(tmp_path, runs)
    assert page_kind(tmp_path) == "histograms"
    html = render_page(tmp_path).read_text()
    assert "0 runs" not in html and "No runs recorded" not in html and "0 groups" not in html
    assert "6 activation-histogram runs probed at initialization" in html
    assert "<h2>Activations and gradients</h2>" in html
    assert html.count("data:image/png;base64,") == 2  # std + gradient std, and the grid
    diagnosis = re.search(r'<ul class="diagnosis" id="a-diagnosis">(.*?)</ul>', html, re.S)[1]
    assert "sigmoid / normal: saturated:" in diagnosis and "Try: smaller weights" in diagnosis
    items = re.findall(r"<li>(.*?)</li>", diagnosis)
    assert items[0] == "a lesson the preset wrote"  # the writer's own line is kept, first
    assert all("Try:" in x for x in items[1:])  # its advice-less copies of findings are not
    assert len(items) == 1 + sum(len(r.probe.findings) for r in runs)
    assert "relu / he_normal: healthy: activation std stays within" in html


def test_steps_to_target_states_the_target_and_tables_scroll(tmp_path):
    with Store.open(tmp_path) as store:
        for r in make_records(inits=("he_normal", "lecun_normal"), seeds=2, steps=100):
            store.put_run(r)
    html = render_report(tmp_path).read_text()
    assert "Steps to train loss ≤ 0.5" in html and ">Steps to target<" not in html
    tables = html.count("<table")
    assert tables >= 2 and html.count('<div class="scroll">') == tables


def test_best_step_star_sits_on_the_monitored_metric_at_that_step():
    r = make_record("he_normal", 0, steps=200, early_stop=(160, 100))
    fig = Figure()
    ax = fig.add_subplot()
    assert plots._marks(ax, [r], "C0", ["train_loss", "val_loss"]) == {"stop", "best"}
    [star] = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    val = r.metrics["val_loss"]
    assert star.get_xdata()[0] == 100
    assert star.get_ydata()[0] == pytest.approx(val.values[val.steps.index(100)])
    assert star.get_transform() == ax.transData  # data units, not the top edge of the axes
    ax2 = Figure().add_subplot()  # the accuracy figure does not draw val_loss: no star there
    assert "best" not in plots._marks(ax2, [r], "C0", ["val_acc"])


def test_a_folder_of_sub_runs_links_them_and_they_link_back(tmp_path, runs):
    _histogram_folder(tmp_path, runs[:1])
    child = tmp_path / "he_normal"
    with Store.open(child) as store:
        store.put_run(make_record("he_normal", 0, steps=60))
    (tmp_path / "not-a-run").mkdir()
    parent_html = render_page(tmp_path).read_text()
    child_html = render_page(child).read_text()
    nav = re.search(r'<nav class="links" id="page-links">(.*?)</nav>', parent_html, re.S)[1]
    assert re.findall(r'href="([^"]+)"', nav) == ["he_normal/report.html"]
    back = re.search(r'<nav class="links" id="page-links">(.*?)</nav>', child_html, re.S)[1]
    assert 'href="../report.html"' in back
    assert (child / "../report.html").resolve() == (tmp_path / "report.html").resolve()


def test_probe_of_a_named_model_keeps_module_names_in_labels(gen):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
            self.head = nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.features(x))

    rec = probe(Net(), torch.randn(8, 4, generator=gen)).to_record()
    assert layer_labels(rec) == {
        "features.0": "layer 1 (linear, features.0)",
        "features.1": "layer 1 (tanh, features.1)",
        "head": "layer 2 (linear, head)",
    }
