"""Issue 19 in a real browser: the watch page's curves and histograms over time render, the
preset histogram page shows its figures, wide tables scroll instead of clipping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from browser import chromium  # noqa: F401  (fixture)
from fake_runs import make_records
from initlab.probe import histogram_experiment, watch
from initlab.report.pages import render_page
from initlab.report.render import render_report
from initlab.results.store import Store

pytestmark = pytest.mark.browser

IMAGES = "els => els.map(e => [e.id, e.complete, e.naturalWidth, e.getBoundingClientRect().width])"


def _page(browser, path, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
               else r.abort())  # fmt: skip
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, errors


@pytest.fixture(scope="module")
def watch_page(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(),
                              nn.Linear(16, 1))  # fmt: skip
        initlab.init_(model, "auto", generator=gen)
        x, y = torch.randn(64, 8, generator=gen), torch.randn(64, 1, generator=gen)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        with watch(model, every=10) as w:
            for _ in range(60):
                opt.zero_grad()
                F.mse_loss(model(x), y).backward()
                opt.step()
        return w.page(tmp_path_factory.mktemp("watch") / "watch.html")
    finally:
        torch.set_num_threads(before)


def test_watch_page_shows_curves_and_histograms_over_time(chromium, watch_page):  # noqa: F811
    page, errors = _page(chromium, watch_page)
    images = page.eval_on_selector_all("figure img", IMAGES)
    assert [i[0] for i in images] == ["watch-curves", "watch-heatmaps"]
    for _, complete, natural, shown in images:
        assert complete and natural > 0 and shown > 0
    assert page.is_visible("#watch-curves") and page.is_visible("#watch-heatmaps")
    cells = page.eval_on_selector_all(
        "#watch-table tbody td.name", "els => els.map(e => e.textContent)"
    )
    assert cells == ["layer 1 (linear)", "layer 1 (tanh)", "layer 2 (linear)", "layer 2 (relu)",
                     "layer 3 (linear)"]  # fmt: skip
    assert "6 sampled steps" in page.inner_text("body") and not errors
    page.screenshot(path=str(watch_page.parent / "watch.png"), full_page=True)
    page.close()


def test_preset_histogram_page_renders_its_figures(chromium, tmp_path):  # noqa: F811
    runs = [histogram_experiment(a, i, layers=3, width=32, samples=200)
            for a in ("sigmoid", "relu") for i in ("normal:std=1", "he_normal")]  # fmt: skip
    with Store.open(tmp_path) as store:
        store.put_meta("name", "activation-histograms")
        store.put_probes(runs)
    page, errors = _page(chromium, render_page(tmp_path))
    text = page.inner_text("body")
    assert "No runs recorded" not in text and "0 runs" not in text
    images = page.eval_on_selector_all("figure img", IMAGES)
    assert len(images) == 2 and all(c and n > 0 and w > 0 for _, c, n, w in images)
    assert page.is_visible("#a-healthy") and "Try:" in page.inner_text("#a-diagnosis")
    assert not errors
    page.screenshot(path=str(tmp_path / "histograms.png"), full_page=True)
    page.close()


def test_wide_summary_table_scrolls_instead_of_clipping(chromium, tmp_path):  # noqa: F811
    with Store.open(tmp_path) as store:
        for r in make_records(inits=("he_normal", "lecun_normal"), seeds=2, steps=100):
            store.put_run(r)
    page, _ = _page(chromium, render_report(tmp_path), width=520)
    box = page.eval_on_selector(
        "#a-summary",
        "t => { const s = t.parentElement; return [getComputedStyle(s).overflowX,"
        " s.scrollWidth, s.clientWidth]; }",
    )
    assert box[0] == "auto" and box[1] > box[2]  # too wide for the viewport: it scrolls
    page.eval_on_selector("#a-summary", "t => t.parentElement.scrollLeft = 10000")
    last = page.locator("#a-summary th").last
    assert last.inner_text().startswith("Stopped early")
    assert last.is_visible() and last.bounding_box()["x"] + last.bounding_box()["width"] <= 520
    page.screenshot(path=str(tmp_path / "narrow.png"), full_page=True)
    page.close()
