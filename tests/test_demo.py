"""``make demo``: its top page links every sub-report, and it reports every lesson."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from initlab import demo
from initlab.experiments import presets_classic
from initlab.experiments.presets import get_preset

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(dataset="blobs", arch="mlp:16", optimizer="sgd", lr=0.1, batch_size=32,
            eval_every=10, seeds=2, steps=20)  # fmt: skip


def _tiny_saito(quick: bool) -> dict:
    return dict(name="saito-init-compare", activation="relu",
                inits=["normal:std=0.01", "lecun_normal", "he_normal"], **TINY)  # fmt: skip


def _tiny_glorot(quick: bool, activation: str = "tanh") -> dict:
    return dict(name=f"xavier-tanh-sigmoid, {activation}", activation=activation,
                inits=["normal:std=1", "normal:std=0.01", "xavier_normal"], **TINY)  # fmt: skip


def test_the_demo_runs_the_lesson_presets_in_order():
    names = [p.name for p in demo.demo_presets()]
    assert names[: len(demo.ORDER)] == list(demo.ORDER)
    assert all(get_preset(n).in_demo for n in names)


def test_the_top_page_links_every_sub_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(presets_classic, "_saito", _tiny_saito)
    monkeypatch.setattr(presets_classic, "_glorot", _tiny_glorot)
    chosen = [get_preset("saito-init-compare"), get_preset("xavier-tanh-sigmoid")]
    monkeypatch.setattr(demo, "demo_presets", lambda: chosen)
    page = demo.main(str(tmp_path / "demo"))
    out = capsys.readouterr().out
    assert page == tmp_path / "demo" / "report.html"
    text = page.read_text()
    hrefs = re.findall(r'href="([^"]+)"', text)
    assert sorted(hrefs) == [
        "saito-init-compare/report.html",
        "xavier-tanh-sigmoid/sigmoid/report.html",
        "xavier-tanh-sigmoid/tanh/report.html",
    ]
    assert all((page.parent / h).is_file() for h in hrefs)
    assert "The demo is running" not in text  # the first page is replaced at the end
    # what ran is the tiny config, not a description of the full mode
    assert "ran: blobs, mlp:16 relu, sgd lr 0.1, batch 32, 20 steps" in text
    assert "2 seeds (0-1)" in out and "2,000" not in out
    lessons = 2 + 4
    assert re.search(rf"\d of {lessons} lessons shown; demo wall time \d+ s", out)
    assert text.count("<li class=") == lessons
    assert f"report: {page.resolve()}" in out


def test_a_file_in_place_of_the_folder_is_one_line(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(SystemExit) as e:
        demo.main(str(path))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file" in err[0]


def test_the_demo_writes_nothing_outside_its_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(presets_classic, "_saito", _tiny_saito)
    monkeypatch.setattr(demo, "demo_presets", lambda: [get_preset("saito-init-compare")])
    monkeypatch.chdir(tmp_path)
    demo.main("d")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["d"]
