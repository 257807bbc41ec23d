"""Training controls through the three front doors (CLI, TOML, Python) with the same names."""

from __future__ import annotations

import json

import pytest

import initlab
from initlab.cli import main
from initlab.experiments.compare import run_specs
from initlab.experiments.config import CompareConfig, load_toml, make_config

OPTIONS = dict(
    dataset="digits", arch="mlp:32x2", inits=["he_normal"], seeds=1, steps=60, eval_every=10,
    batch_size=32, lr=0.05, schedule="cosine:decay_steps=60,warmup_steps=5", l1=1e-5, l2=1e-4,
    weight_decay=0.01, activity_l2=1e-4, activity_layers=[2], dropout=[0.2, 0.1],
    batchnorm=True, early_stopping="patience=3,monitor=val_acc",
)  # fmt: skip
CLI = [
    "compare", "--dataset", "digits", "--arch", "mlp:32x2", "--inits", "he_normal",
    "--seeds", "1", "--steps", "60", "--eval-every", "10", "--batch-size", "32", "--lr", "0.05",
    "--schedule", "cosine:decay_steps=60,warmup_steps=5", "--l1", "1e-5", "--l2", "1e-4",
    "--weight-decay", "0.01", "--activity-l2", "1e-4", "--activity-layers", "2",
    "--dropout", "0.2,0.1", "--batchnorm", "--early-stopping", "patience=3,monitor=val_acc",
    "--no-report", "--threads", "1",
]  # fmt: skip


def test_cli_toml_and_python_give_the_same_runs(tmp_path, capsys):
    python = run_specs(make_config(CompareConfig, **OPTIONS))
    toml = tmp_path / "c.toml"
    toml.write_text("\n".join(f"{k} = {json.dumps(v).replace('true', 'true')}"
                              for k, v in OPTIONS.items()))  # fmt: skip
    from_file = run_specs(load_toml(toml))
    assert [r.key() for r in from_file] == [r.key() for r in python]
    rc = python[0]
    assert rc.arch == "mlp:32,32,batchnorm=true,dropout=0.2,0.1"
    assert rc.extra == {
        "schedule": "cosine:decay_steps=60,warmup_steps=5", "l1": 1e-5, "l2": 1e-4,
        "weight_decay": 0.01, "activity_l2": 1e-4, "activity_layers": [2],
        "early_stopping": "early_stopping:monitor=val_acc,patience=3",
    }  # fmt: skip
    main([*CLI, "--out", str(tmp_path / "cli")])
    capsys.readouterr()
    result = initlab.compare(out=tmp_path / "cli", report=False, **OPTIONS)
    assert result.trained == 0 and result.reused == 1  # the CLI's run has the same key
    record = result.records[0]
    assert record.metrics["lr"].values[0] == pytest.approx(0.05 / 5)
    assert record.test_accuracy > 0.5  # it trained with all of that switched on


def test_a_plain_run_keeps_its_old_key():
    """Controls left at their defaults add nothing to RunSpec.extra."""
    rc = run_specs(make_config(CompareConfig, dataset="digits", inits=["he_normal"]))[0]
    assert rc.extra == {} and rc.arch == "mlp:100x4"


def test_plateau_runs_train_alone_and_leave_no_checkpoint(tmp_path):
    result = initlab.compare(
        dataset="digits", arch="mlp:16", inits="he_normal,lecun_normal", seeds=2, steps=40,
        eval_every=5, batch_size=32, lr=0.5, schedule="plateau:patience=0,factor=0.5",
        out=tmp_path, report=False, threads=1,
    )  # fmt: skip
    assert result.trained == 4
    lrs = [tuple(r.metrics["lr"].values) for r in result.records]
    assert len(set(lrs)) > 1  # each run's LR followed its own metric
    assert not list((tmp_path / "checkpoints").glob("*.safetensors"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--early-stopping", "patince=2"], "Did you mean 'patience'"),
        (["--early-stopping", "monitor=val_los"], "Did you mean 'val_loss'"),
        (["--schedule", "cosin"], "Did you mean 'cosine'"),
        (["--dropout", "0.5,x"], "--dropout '0.5,x'"),
        (["--dropout", "1.5"], "dropout rates must be in [0, 1)"),
        (["--activity-layers", "one"], "--activity-layers 'one'"),
        (["--l2", "-1"], "'l2'"),
        (["--arch", "mlp:32x2,dropout=0.1,0.2,0.3"], "one rate per hidden layer (2 here)"),
        (["--activity-l1", "0.1", "--activity-layers", "5"], "has 2 activations"),
    ],
)
def test_bad_controls_are_one_line(run_cli, args, message, capsys, tmp_path):
    base = ["compare", "--dataset", "digits", "--arch", "mlp:32x2", "--inits", "he_normal",
            "--seeds", "1", "--steps", "5", "--no-report", "--out", str(tmp_path)]  # fmt: skip
    code, _, err = run_cli([*base, *args])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_compare_help_groups_the_controls(capsys):
    main(["compare", "--help"])
    out = capsys.readouterr().out
    section = out.split("Schedule, regularization, early stopping:")[1].split("Run:")[0]
    for flag in ("--schedule", "--l1", "--l2", "--weight-decay", "--activity-l1",
                 "--activity-layers", "--dropout", "--batchnorm", "--early-stopping"):  # fmt: skip
        assert flag in section
