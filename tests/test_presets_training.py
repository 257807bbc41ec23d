"""The regularization and lr-schedules presets: settings side by side in one run folder."""

from __future__ import annotations

import json

import pytest

from initlab.experiments.presets import get_preset, run_preset
from initlab.results.store import Store
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
    assert len(stopped) == 1
    (es,) = stopped
    assert es.val_loss == min(es.metrics["val_loss"].values)  # ends with its best weights
    assert (tmp_path / "report.html").is_file() and len(result.lines) == 5


@pytest.mark.slow
def test_lr_schedules_quick_follows_each_schedule(tmp_path):
    result = run_preset("lr-schedules", tmp_path, quick=True, dataset="digits")
    (combined,) = result.parts
    with Store.open(tmp_path) as store:
        runs = store.runs()
    assert len(runs) == 4
    for run in runs:
        spec = run.config.extra.get("schedule", "constant")
        expected = get_schedule(spec).lrs(run.config.lr, run.config.steps)
        assert run.metrics["lr"].values == pytest.approx(expected, rel=1e-12)
    assert len({tuple(r.metrics["lr"].values) for r in runs}) == 4
    assert all(s.test_accuracy.mean > 0.8 for s in combined.summaries)
