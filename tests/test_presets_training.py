"""The regularization and lr-schedules presets: settings side by side in one run folder."""

from __future__ import annotations

import json

import pytest

from initlab.experiments import presets_training
from initlab.experiments.presets import get_preset, run_preset
from initlab.results.records import MetricSeries, RunRecord
from initlab.results.store import Store
from initlab.runspec import RunSpec
from initlab.train.schedules import get as get_schedule


def test_both_presets_are_registered_and_in_the_demo():
    for name in ("regularization", "lr-schedules"):
        assert get_preset(name).in_demo


def test_dataset_option_only_for_presets_that_take_one(run_cli, capsys, tmp_path):
    code, _, err = run_cli(["run", "saito-init-compare", "--dataset", "digits", "--out",
                            str(tmp_path)])  # fmt: skip
    assert code == 2 and "fixed dataset; drop --dataset" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_fashion_mnist_says_how_to_get_it_and_how_to_use_mnist(
    run_cli, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("INITLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("INITLAB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path))  # no cache with the files either
    monkeypatch.setattr("initlab.data.datasets._CACHE", {})  # nor one loaded by another test
    monkeypatch.setattr("initlab.data.sources.CHECKOUT_DATA", None)  # nor ../shared/data
    code, _, err = run_cli(["run", "regularization", "--out", str(tmp_path / "r")])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "apt-get install dataset-fashion-mnist" in err
    assert "initlab run regularization --dataset mnist" in err


@pytest.mark.slow
def test_regularization_quick_on_digits_stores_every_setting(tmp_path):
    result = run_preset("regularization", tmp_path, quick=True, dataset="digits")
    (combined,) = result.parts
    labels = [s.init for s in combined.summaries]
    assert len(labels) == 5 and len(set(labels)) == 5
    assert any("l2=0.0001" in label for label in labels)
    assert any("dropout=0.5" in label for label in labels)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [e["init"] for e in summary["inits"]] == labels
    stopped = [r for r in combined.records if r.config.extra.get("early_stopping")]
    assert len(stopped) == 3  # seeds 0-2
    for es in stopped:
        assert es.val_loss == min(es.metrics["val_loss"].values)  # ends with its best weights
    assert (tmp_path / "report.html").is_file()
    # what ran, one line per setting, then the four lessons (from the runs, not the text)
    assert result.lines[0].startswith("ran: digits, mlp:256,256 relu, adam lr 0.001, batch 100, ")
    assert "800 steps (" in result.lines[0] and "3 seeds (0-2)" in result.lines[0]
    assert len(result.lines) == 1 + 5 + 4 and len(result.lessons) == 4
    assert [x.text for x in result.lessons] == result.lines[-4:]


@pytest.mark.slow
def test_lr_schedules_quick_follows_each_schedule(tmp_path):
    result = run_preset("lr-schedules", tmp_path, quick=True, dataset="digits")
    (combined,) = result.parts
    with Store.open(tmp_path) as store:
        runs = store.runs()
    assert len(runs) == 4 * 3  # 4 schedules x seeds 0-2
    assert result.lines[0].startswith("ran: digits, mlp:100x4 relu, momentum lr 0.05")
    assert "400 steps (" in result.lines[0] and "3 seeds (0-2)" in result.lines[0]
    (annealing,) = result.lessons
    assert "paired over 3 seeds" in annealing.text and annealing.text == result.lines[-1]
    for run in runs:
        spec = run.config.extra.get("schedule", "constant")
        expected = get_schedule(spec).lrs(run.config.lr, run.config.steps)
        assert run.metrics["lr"].values == pytest.approx(expected, rel=1e-12)
    assert len({tuple(r.metrics["lr"].values) for r in runs}) == 4
    assert all(s.test_accuracy.mean > 0.8 for s in combined.summaries)


def test_the_list_line_of_regularization_says_full_and_quick_settings():
    summary = get_preset("regularization").summary
    assert "fashion-mnist" in summary and "22,000 steps" in summary
    assert "--quick: dataset digits, seeds 3, steps 800, eval every 25" in summary


def _record(seed: int, val: list[float], **options) -> RunRecord:
    spec = RunSpec("digits", "mlp:8", "relu", "he_normal", seed, "adam", 0.001, 10, 40, 10,
                   extra=options)  # fmt: skip
    series = MetricSeries("val_loss", [10, 20, 30, 40], val)
    stop = {"status": "stopped", "stopped_step": 30} if "early_stopping" in options else {}
    return RunRecord(spec, val_loss=val[-1], metrics={"val_loss": series}, **stop)


def test_regularization_lessons_come_from_the_runs():
    settings = dict(presets_training.REGULARIZERS)
    records = []
    for label, options in presets_training.REGULARIZERS:
        for seed in range(3):
            rising = [0.3, 0.2 + 0.01 * seed, 0.25, 0.3 + 0.01 * seed]  # overfits
            if label == "dropout":
                rising = [0.3, 0.2, 0.19, 0.18 + 0.01 * seed]
            if label == "early-stopping":
                rising = [0.3, 0.2 + 0.01 * seed, 0.25, 0.2 + 0.01 * seed]
            records.append(_record(seed, rising, **options))
    assert set(settings) == {"none", "l2", "l1", "dropout", "early-stopping"}
    overfit, fired, es_better, dropout = presets_training.regularization_lessons(records, 40)
    assert overfit.shown and "paired over 3 seeds" in overfit.text
    assert fired.shown and "3 of 3 runs stopped before step 40 (stopped at: 30, 30, 30)" in (
        fired.text
    )
    assert es_better.shown and dropout.shown
    again = presets_training.regularization_lessons(records, 30)  # stopped at the last step
    assert again[1].shown is False and "0 of 3 runs stopped" in again[1].text
