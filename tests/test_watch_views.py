"""Issue 19: watch() results you can look at (plot, histogram over time, CSV / JSON), eval
forwards kept out of the steps, and ``initlab.probe``'s real signature."""

from __future__ import annotations

import csv
import inspect
import json
import pydoc
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

import initlab
from initlab.probe import probe as probe_package
from initlab.probe import watch
from initlab.probe.probe import probe as probe_function
from initlab.report.watch_plots import draw_curves, draw_heatmaps, heat_grid, rebin, shown_layers
from initlab.results.probe_records import WATCH_COLUMNS, Histogram, WatchHistory, near_zero


def _user_loop(gen, steps=200, every=10, eval_every=50):
    """A user's own loop: SGD on a small MLP, an evaluation forward every ``eval_every``."""
    model = nn.Sequential(
        nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1)
    )
    initlab.init_(model, "auto", generator=gen)
    x, y = torch.randn(64, 8, generator=gen), torch.randn(64, 1, generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with watch(model, every=every) as w:
        for step in range(steps):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
            if step % eval_every == eval_every - 1:
                model.eval()
                with torch.no_grad():
                    model(x)
                model.train()
                model(x).detach()  # train mode but outside the loss: a step all the same
    return model, w


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def watched():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: OpenMP waits would dominate on a busy machine
    try:
        return _user_loop(torch.Generator().manual_seed(0))
    finally:
        torch.set_num_threads(before)


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_done_when_200_steps_every_10_then_plot_writes_the_png(watched, tmp_path):
    model, w = watched
    # 200 loop steps + 4 extra train-mode forwards; the 4 eval forwards are not steps
    assert w.forwards == 204 and w.history.eval_skipped == 4
    assert w.history.steps == list(range(0, 204, 10))
    out = w.plot(tmp_path / "watch.png")
    width, height = _png_size(out)
    assert width >= 1000 and height >= 500  # curves on top, histograms over time below
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_curves_plot_the_history_and_heatmaps_its_histograms(watched):
    _, w = watched
    h = w.history
    names = shown_layers(h)
    assert names == ["1", "3"]  # the tanh and the ReLU outputs
    axes = Figure().subplots(1, 3)
    draw_curves(axes, h)
    assert [ax.get_title() for ax in axes] == ["mean", "std", "% near zero"]
    std_lines = axes[1].get_lines()
    assert [ln.get_label() for ln in std_lines] == ["layer 1 (tanh)", "layer 2 (relu)"]
    np.testing.assert_allclose(std_lines[1].get_ydata(), h.series("3", "std")[1])
    near = axes[2].get_lines()[1].get_ydata()
    assert 30 < near[0] < 70  # about half of a ReLU's outputs are 0
    heat_axes = Figure().subplots(1, 2)
    draw_heatmaps(heat_axes, h)
    image = heat_axes[1].images[0].get_array()
    grid, steps, lo, hi = heat_grid(h, "3")
    assert image.shape == (30, len(h.records)) and steps == h.steps
    np.testing.assert_allclose(image, np.log1p(grid))
    assert heat_axes[1].get_xlabel() == "training step" and lo == 0.0 < hi


def test_rebin_keeps_every_count_inside_the_common_range():
    a = Histogram(0.0, 1.0, [3, 0, 5, 2])
    moved = rebin(a, -1.0, 2.0, 6)
    assert moved.sum() == pytest.approx(10)
    assert moved.tolist() == pytest.approx([0, 0, 3, 7, 0, 0])
    assert near_zero(type("L", (), {"histogram": a})()) == pytest.approx(3 / 10)


def test_csv_and_json_exports_hold_every_step_and_layer(watched, tmp_path):
    _, w = watched
    rows = list(csv.DictReader(w.to_csv(tmp_path / "w.csv").open()))
    assert len(rows) == len(w.history.records) * 5 and list(rows[0]) == list(WATCH_COLUMNS)
    assert rows[1]["label"] == "layer 1 (tanh)" and rows[1]["step"] == "0"
    assert float(rows[1]["std"]) == pytest.approx(w.history.records[0].layers[1].std)
    assert rows[1]["dead_elements"] == ""  # None is an empty cell
    back = WatchHistory.from_dict(json.loads(w.to_json(tmp_path / "w.json").read_text()))
    assert back == w.history and back.eval_skipped == 4


def test_eval_forwards_are_skipped_not_measured(gen):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    with watch(model, every=1) as w:
        model(torch.ones(2, 4))
        model.eval()
        model(torch.ones(2, 4) * 100)  # would change the stats if it were measured
        model.train()
        with torch.no_grad():
            model(torch.ones(2, 4) * 100)
    assert w.history.steps == [0] and w.history.eval_skipped == 2
    assert w.history.records[0].layers[0].count == 8  # only the training forward


def test_probe_shows_its_real_signature():
    assert inspect.signature(initlab.probe) == inspect.signature(probe_function)
    assert "loss_fn" in inspect.signature(probe_package).parameters
    assert inspect.unwrap(initlab.probe) is probe_function
    text = pydoc.plain(pydoc.render_doc(initlab.probe))
    assert "probe(model: 'nn.Module', inputs: 'Any', *, targets:" in text
