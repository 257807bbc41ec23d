"""Sweep files and the planner: grids become stacked jobs; bad files give one-line errors."""

from __future__ import annotations

import math

import pytest

from initlab.errors import ConfigError
from initlab.experiments.compare import run_specs
from initlab.experiments.sweep import load_sweep, log_range, parse_sweep
from initlab.results.records import MetricSeries, RunRecord
from initlab.results.sweep_summary import best_per_cell
from initlab.runspec import RunSpec
from sweep_util import write_sweep


def test_planner_groups_the_grid_into_one_job_per_non_init_point(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    jobs = sweep.plan()
    assert sweep.runs() == 72 and len(jobs) == 8
    cells = [tuple(j.cell.values()) for j in jobs]
    assert cells == [(a, d, lr) for a in ("relu", "tanh") for d in (1, 2) for lr in (0.05, 0.2)]
    for job in jobs:
        cfg = job.compare_config()
        # inits x seeds stacked inside one job: one architecture, one set of hyperparameters
        assert cfg.inits == ["lecun_normal", "xavier_normal", "he_normal"] and cfg.seeds == 3
        assert cfg.arch == f"mlp:16x{job.cell['depth']}" and cfg.lr == job.cell["lr"]
        assert cfg.threads == 1 and len(job.keys) == 9
        assert list(job.keys) == [rc.key() for rc in run_specs(cfg)]
    assert len({k for j in jobs for k in j.keys}) == 72 and len({j.id for j in jobs}) == 8
    # the thread count is not part of any run's identity
    assert [j.keys for j in sweep.plan(threads=4)] == [j.keys for j in jobs]


def test_any_compare_field_can_be_fixed_or_an_axis_and_the_example_parses():
    sweep = parse_sweep({
        "fixed": {"dataset": "digits", "arch": "mlp:8", "bias": "zeros", "steps": 10},
        "axes": {"target_loss": [0.5, 1.0], "batch_size": [8, 16, 32], "activation": "tanh"},
    })  # fmt: skip
    jobs = sweep.plan()
    assert len(jobs) == 6 and jobs[-1].cell == {"target_loss": 1.0, "batch_size": 32,
                                                "activation": "tanh"}  # fmt: skip
    assert load_sweep("examples/sweep-small.toml").runs() == 72


def test_lr_ranges_are_log_spaced_with_exact_ends():
    assert log_range("lr", 1e-4, 1e-1, 4) == [0.0001, 0.001, 0.01, 0.1]
    assert log_range("lr", 0.3, 0.3, 1) == [0.3]
    sweep = parse_sweep({"fixed": {"arch": "mlp:8"}, "axes": {"lr": {"min": 0.01, "max": 1,
                                                                     "num": 3}}})  # fmt: skip
    assert sweep.axes["lr"] == [0.01, 0.1, 1.0]
    activations = parse_sweep({"axes": {"activation": ["ReLU", "tanh"]}}).plan()
    assert [j.cell["activation"] for j in activations] == ["relu", "tanh"]  # canonical names


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"axis": {}}, "Unknown key 'axis'. Did you mean 'axes'?"),
        ({"fixed": {"lrr": 0.1}}, "Unknown key 'fixed.lrr'. Did you mean 'lr'?"),
        (
            {"axes": {"activaton": ["relu"]}},
            "Unknown axis 'axes.activaton'. Did you mean 'activation'?",
        ),
        ({"axes": {"seeds": [1, 2]}}, "set fixed.seeds = N"),
        ({"fixed": {"threads": 2}}, "--threads-per-job"),
        ({"fixed": {"lr": 0.1}, "axes": {"lr": [0.1]}}, "both in [fixed] and in [axes]"),
        ({"axes": {"depth": [1, 2]}}, "{depth} placeholder"),
        ({"axes": {"lr": []}}, "'axes.lr' has no values"),
        ({"axes": {"lr": [0.1, 0.1]}}, "lists 0.1 twice"),
        ({"axes": {"lr": {"min": 0.1, "max": 1}}}, "needs min, max and num (missing num)"),
        ({"axes": {"lr": {"min": 0.1, "max": 1, "nm": 2}}}, "Did you mean 'num'?"),
        ({"axes": {"lr": {"min": 0, "max": 1, "num": 2}}}, "needs min and max > 0"),
        ({"axes": {"lr": [0.1, -1]}}, "Bad value for 'lr'"),
        ({"axes": {"activation": ["relu", "rellu"]}}, "axis 'axes.activation'"),
        ({"axes": {"inits": ["he_normal", "he_nromal"]}}, "he_normal"),
        ({"fixed": []}, "'fixed' must be a table"),
    ],
)
def test_bad_sweep_files_give_one_line_naming_the_key(tmp_path, data, needle):
    with pytest.raises(ConfigError) as e:
        parse_sweep(data)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_file_errors_name_the_file(tmp_path):
    path = write_sweep(tmp_path, extra="[extra]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"Unknown key 'extra'.*sweep.toml"):
        load_sweep(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[fixed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_sweep(tmp_path / "bad.toml")


def _run(init, lr, seed, val, acc, status="finished"):
    rc = RunSpec("digits", "mlp:8", "relu", init, seed, "sgd", lr, 8, 10)
    series = {"val_loss": MetricSeries("val_loss", [5, 10], [9.0, val])}
    return RunRecord(rc, status=status, test_accuracy=acc, metrics=series)


def test_each_init_at_its_own_best_lr_then_ranked_by_test_accuracy():
    runs = [
        # a: lr 0.1 has the lower mean val loss (0.3) -> taken there, accuracy 0.80
        _run("a", 0.1, 0, 0.2, 0.80), _run("a", 0.1, 1, 0.4, 0.80),
        _run("a", 1.0, 0, 0.5, 0.99), _run("a", 1.0, 1, 0.5, 0.99),
        # b: lr 0.1 would win on mean, but one seed diverged (NaN) -> lr 1.0, accuracy 0.90
        _run("b", 0.1, 0, 0.1, 0.95), _run("b", 0.1, 1, math.nan, 0.1, status="diverged"),
        _run("b", 1.0, 0, 0.6, 0.90), _run("b", 1.0, 1, 0.6, 0.90),
    ]  # fmt: skip
    plan = [
        {"cell": {"depth": 1, "lr": lr}, "keys": [r.key for r in runs if r.config.lr == lr]}
        for lr in (0.1, 1.0)
    ]
    rows = best_per_cell(plan, {r.key: r for r in runs})
    got = [(r.init, r.lr, r.rank, round(r.val_loss, 6), r.test_accuracy.mean) for r in rows]
    assert got == [("b", 1.0, 1, 0.6, 0.9), ("a", 0.1, 2, 0.3, 0.8)]
    assert rows[0].cell == {"depth": 1} and rows[0].test_accuracy.values == [0.9, 0.9]
    # a run missing from the store makes that lr unusable, named by the plan's inits
    plan[1]["inits"] = ["a", "a", "c"]
    plan[1]["keys"] = [*plan[1]["keys"][:2], "missing"]
    rows = best_per_cell(plan, {r.key: r for r in runs})
    c = next(r for r in rows if r.init == "c")
    assert c.failed == 1 and c.val_loss == math.inf and c.rank == 3
