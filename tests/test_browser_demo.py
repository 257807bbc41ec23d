"""The demo's pages in a real browser (Debian's chromium): the top page links every
sub-report, each sub-report loads with every figure drawn and none empty, and each links back.
The demo runs at a tiny size here (the lessons themselves are checked in test_presets_classic)."""

from __future__ import annotations

import pytest

from browser import chromium  # noqa: F401  (fixture)
from initlab import demo
from initlab.experiments import presets_classic
from initlab.experiments.presets import get_preset
from test_demo import _tiny_glorot, _tiny_saito

pytestmark = pytest.mark.usefixtures("one_thread")
IMAGES = "els => els.map(e => [e.complete, e.naturalWidth, e.getBoundingClientRect().width])"


@pytest.fixture
def demo_page(tmp_path, monkeypatch):
    monkeypatch.setattr(presets_classic, "_saito", _tiny_saito)
    monkeypatch.setattr(presets_classic, "_glorot", _tiny_glorot)
    chosen = [get_preset("saito-init-compare"), get_preset("xavier-tanh-sigmoid")]
    monkeypatch.setattr(demo, "demo_presets", lambda: chosen)
    return demo.main(str(tmp_path / "demo"))


def test_every_demo_page_loads_with_its_figures_and_links(chromium, demo_page, tmp_path):  # noqa: F811
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(demo_page.resolve().as_uri(), wait_until="load")
    page.screenshot(path=str(tmp_path / "demo-top.png"), full_page=True)
    links = page.eval_on_selector_all("a[href$='report.html']", "els => els.map(e => e.href)")
    assert len(links) == 3 and "lessons shown" in page.inner_text("body")
    for i, href in enumerate(links):
        page.goto(href, wait_until="load")
        body = page.inner_text("body")
        assert "No runs recorded" not in body and "0 runs in 0 groups" not in body, href
        images = page.eval_on_selector_all("img", IMAGES)
        assert images and all(done and natural > 0 and shown > 0 for done, natural, shown in images)
        ups = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
        assert demo_page.resolve().as_uri() in ups, href  # the way back to the demo page
        page.screenshot(path=str(tmp_path / f"demo-{i}.png"), full_page=True)
    page.close()
