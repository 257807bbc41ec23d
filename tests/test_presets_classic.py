"""The classic presets say what they ran (from the config run), claim only what their CIs
show, and keep every run of a folder that holds another seed count."""

from __future__ import annotations

import json

import pytest

from initlab.experiments import presets_classic
from initlab.experiments.compare import compare
from initlab.experiments.preset_registry import compare_stats, describe, lesson
from initlab.experiments.presets import get_preset, run_preset
from initlab.results.records import InitSummary
from initlab.results.store import Store
from initlab.results.summary import stat

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(dataset="blobs", arch="mlp:16", activation="relu", optimizer="sgd", lr=0.1,
            batch_size=32, eval_every=10)  # fmt: skip


def _tiny_saito(seeds: int, steps: int = 20):
    def settings(quick: bool) -> dict:
        return dict(name="saito-init-compare", inits=["normal:std=0.01", "lecun_normal",
                    "he_normal"], seeds=seeds, steps=steps, **TINY)  # fmt: skip

    return settings


def test_describe_says_steps_epochs_seeds_and_controls():
    text = describe(dict(dataset="mnist", arch="mlp:256,256", inits=["he_normal"], seeds=1,
                         steps=300, batch_size=100, l2=1e-4), train_size=55_000)  # fmt: skip
    assert "300 steps (0.55 epochs of 55,000)" in text
    assert "1 seed (0)" in text and "l2 0.0001" in text and text.endswith(": he_normal")
    assert "2,000" not in text


def test_list_summaries_come_from_the_settings_run():
    summary = get_preset("saito-init-compare").summary
    full, quick = presets_classic._saito(False), presets_classic._saito(True)
    assert describe(full) in summary
    assert f"--quick: seeds {quick['seeds']}, steps {quick['steps']}" in summary
    deep = get_preset("deep-relu").summary
    assert "mlp:100x30" in deep and "--quick: arch mlp:100x10" in deep


def test_a_quick_preset_prints_what_it_ran(tmp_path, monkeypatch):
    monkeypatch.setattr(presets_classic, "_saito", _tiny_saito(seeds=2, steps=20))
    result = run_preset("saito-init-compare", tmp_path, quick=True)
    ran = result.lines[0]
    assert ran.startswith("ran: blobs, mlp:16 relu, sgd lr 0.1, batch 32, 20 steps (")
    assert "2 seeds (0-1): normal:std=0.01 vs lecun_normal vs he_normal" in ran
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["steps"], config["seeds"], config["dataset"]) == (20, 2, "blobs")
    with Store.open(tmp_path) as store:
        assert store.get_meta("name") == "saito-init-compare (quick)"
        assert store.get_meta("diagnosis") == result.lines  # recorded, shown by the report
    assert result.parts[0].report_path == tmp_path / "report.html"
    assert "ran: blobs, mlp:16 relu" in (tmp_path / "report.html").read_text()
    assert [x.claim for x in result.lessons] == [
        "N(0, 0.01) stalls a 4-layer ReLU net (its signal collapses), He trains it",
        "He beats sqrt(1/n) on a ReLU net",
    ]
    assert all(x.text in result.lines for x in result.lessons)


def test_other_seed_count_in_the_folder_is_said_and_every_run_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(presets_classic, "_saito", _tiny_saito(seeds=5))
    first = run_preset("saito-init-compare", tmp_path)
    assert not first.parts[0].notes
    monkeypatch.setattr(presets_classic, "_saito", _tiny_saito(seeds=3))
    again = run_preset("saito-init-compare", tmp_path)
    (note,) = again.parts[0].notes
    assert note in again.lines
    assert "this config has 3 seeds (9 runs)" in note
    assert "6 other runs (6 of the same settings with seeds 3, 4)" in note
    assert "all kept" in note and "summary.json covers only this config's 9 runs" in note
    assert again.parts[0].trained == 0  # the 3 seeds were reused
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [e["seeds"] for e in summary["inits"]] == [3, 3, 3]
    with Store.open(tmp_path) as store:
        assert len(store.runs()) == 15  # nothing deleted


def test_other_settings_are_counted_apart_from_other_seeds(tmp_path):
    compare(out=tmp_path, report=False, inits="he_normal", seeds=2, steps=10, **TINY)
    result = compare(out=tmp_path, report=False, inits="he_normal", seeds=1, steps=12, **TINY)
    (note,) = result.notes
    assert "this config has 1 seed (1 runs)" in note and "2 with other settings" in note


def _summary(init: str, values: list[float]) -> InitSummary:
    return InitSummary(init, len(values), stat([1.0] * len(values)), stat(values), None, 0)


def test_a_lesson_is_shown_only_when_the_cis_do_not_overlap():
    s = [_summary("he", [0.90, 0.91, 0.92]), _summary("lecun", [0.80, 0.81, 0.82]),
         _summary("close", [0.89, 0.91, 0.93]), _summary("one", [0.5])]  # fmt: skip
    shown = lesson("He beats LeCun", s, "he", "lecun")
    assert shown.shown is True and "0.9100 ± 0.0248 vs lecun" in shown.text
    assert "the CIs do not overlap, so this run shows it" in shown.text
    assert lesson("x", s, "he", "close").shown is False
    assert lesson("x", s, "lecun", "he").shown is False  # reversed
    assert "order is reversed" in lesson("x", s, "lecun", "he").text
    assert lesson("x", s, "he", "one").shown is None
    lower = compare_stats("loss", "loss", False, ("a", "b"), stat([1, 1.05, 1.1]),
                          stat([2, 2.05, 2.1]), (3, 3))  # fmt: skip
    assert lower.shown is True


def test_xavier_equals_lecun_only_on_square_layers():
    assert "draw the same weights" in presets_classic.xavier_equals_lecun(100, 100)
    assert "draw different weights" in presets_classic.xavier_equals_lecun(784, 100)


def test_histogram_lessons_show_saturation_and_collapse():
    saturation, collapse = presets_classic.histogram_lessons(seeds=3, samples=200)
    assert saturation.shown and collapse.shown
    assert "N(0, 1) saturates sigmoid: N(0, 1) layer-5 saturated fraction" in saturation.text


@pytest.mark.slow
def test_the_demo_presets_show_their_lessons(tmp_path):
    """The quick modes are sized so that every lesson's CIs separate (MNIST, real runs)."""
    for name in ("saito-init-compare", "xavier-tanh-sigmoid", "deep-relu"):
        result = run_preset(name, tmp_path / name, quick=True)
        assert result.lessons and all(x.shown for x in result.lessons), result.lines


def test_histogram_lessons_reuse_the_grid_runs(monkeypatch):
    inits, acts = ["normal:std=1", "normal:std=0.01", "lecun_normal"], ["sigmoid", "tanh"]
    grid = presets_classic.histogram_grid(inits, acts, layers=5, width=100, samples=200)
    calls, real = [], presets_classic.histogram_experiment

    def counted(*args, **kwargs):
        calls.append(kwargs["seed"])
        return real(*args, **kwargs)

    monkeypatch.setattr(presets_classic, "histogram_experiment", counted)
    presets_classic.histogram_lessons(2, samples=200, runs=grid)
    assert calls == [1, 1, 1, 1]  # seed 0 of the four (activation, init) pairs: the grid's
