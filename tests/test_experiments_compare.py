"""``initlab compare`` and ``initlab run`` end to end on real (small) data."""

from __future__ import annotations

import json

import pytest

from initlab.cli import main
from initlab.experiments.presets import presets

ARGS = [
    "compare", "--dataset", "digits", "--arch", "mlp:32x2", "--inits", "lecun_normal,he_normal",
    "--seeds", "2", "--steps", "150", "--eval-every", "50", "--batch-size", "32", "--lr", "0.05",
    "--no-report", "--threads", "1",
]  # fmt: skip


def test_compare_writes_summary_and_second_run_trains_nothing(tmp_path, capsys):
    main([*ARGS, "--out", str(tmp_path)])
    first = capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    inits = [entry["init"] for entry in summary["inits"]]
    assert inits == ["lecun_normal", "he_normal"]
    for entry in summary["inits"]:
        assert entry["seeds"] == 2 and entry["diverged"] == 0
        assert len(entry["test_accuracy"]["values"]) == 2
        assert {"mean", "ci95", "values"} <= set(entry["final_train_loss"])
    # real learning on real data: He beats chance by far after 150 steps
    assert summary["inits"][1]["test_accuracy"]["mean"] > 0.8
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["inits"] == inits and config["dataset"] == "digits"

    main([*ARGS, "--out", str(tmp_path)])
    second = capsys.readouterr().out
    assert "nothing trained" in second
    table = lambda text: text.split("run folder")[0].split("all 4 runs")[0]  # noqa: E731
    assert table(first) == table(second)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def test_toml_config_and_options_override(run_cli, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('dataset = "digits"\narch = "mlp:16x1"\ninits = ["he_normal"]\nseeds = 1\n'
                   'steps = 20\nbatch_size = 16\neval_every = 10\n')  # fmt: skip
    main(["compare", "--config", str(cfg), "--steps", "30", "--no-report", "--out",
          str(tmp_path / "r")])  # fmt: skip
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["steps"] == 30 and config["arch"] == "mlp:16x1"
    capsys.readouterr()  # a slow machine may have printed progress lines: not this test's
    cfg.write_text('dataset = "digits"\nseedz = 2\n')
    code, _, err = run_cli(["compare", "--config", str(cfg)])
    assert code == 2 and "Did you mean 'seeds'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, words",
    [
        (["--inits", "he_norml"], "Did you mean 'he_normal'"),
        (["--activation", "rleu"], "Did you mean 'relu'"),
        (["--lr", "-1"], "'lr'"),
        (["--seeds", "0"], "'seeds'"),
        (["--optimizer", "adamm"], "Did you mean 'adam'"),
        (["--dataset", "mnits"], "Did you mean 'mnist'"),
    ],
)
def test_bad_options_give_one_line_and_status_2(run_cli, args, words, capsys, tmp_path):
    code, _, err = run_cli(["compare", *args, "--out", str(tmp_path), "--steps", "5"])
    assert code == 2
    assert words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_run_lists_every_preset_and_suggests_names(run_cli, capsys):
    main(["run", "--list"])
    out = capsys.readouterr().out
    for p in presets():
        assert p.name in out
    code, _, err = run_cli(["run", "saito-init-compar"])
    assert code == 2 and "Did you mean 'saito-init-compare'" in err
