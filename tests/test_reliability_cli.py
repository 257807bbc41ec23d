"""Bad data, bad configs and Ctrl-C through the real CLI: exit status 2 and ONE line.

Data cases use real MNIST / Fashion-MNIST files copied (or linked) into a temp folder with
one file corrupted; config cases go through TOML files and options. Cases that
tests/test_experiments_compare.py already covers through options (typo'd init, activation,
optimizer and dataset, ``--lr -1``, ``--seeds 0``) are covered here through TOML files.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from initlab.cli import main
from initlab.data import datasets
from initlab.data.datasets import bundled_mnist_dir

SHARED = Path(os.environ["INITLAB_DATA"].split(os.pathsep)[0])
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TINY = [
    "--arch", "mlp:32x2", "--inits", "he_normal", "--seeds", "1", "--steps", "60",
    "--eval-every", "20", "--batch-size", "32", "--threads", "1", "--no-report",
]  # fmt: skip


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code, capsys.readouterr().err


def one_line(args: list[str], capsys) -> str:
    """Run the CLI expecting a one-line error and exit status 2; return that line."""
    code, err = run_cli(args, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    return lines[0]


def corrupted_copy(folder: Path, source: Path, edit_raw=None, edit_gz=None) -> Path:
    """``folder`` holding the four IDX files of ``source`` with train labels edited."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in source.glob("*.gz"):
        if f.name != TRAIN_LABELS:
            (folder / f.name).symlink_to(f)  # the big unchanged files: no copy needed
    gz = (source / TRAIN_LABELS).read_bytes()
    if edit_raw is not None:
        gz = gzip.compress(bytes(edit_raw(bytearray(gzip.decompress(gz)))))
    if edit_gz is not None:
        gz = edit_gz(gz)
    bad = folder / TRAIN_LABELS
    bad.write_bytes(gz)
    return bad


def _set(index: int, value: int):
    def edit(raw: bytearray) -> bytearray:
        raw[index] = value
        return raw

    return edit


def _bump(index: int):
    """Change one label to another valid label: only the checksum can tell."""

    def edit(raw: bytearray) -> bytearray:
        raw[index] = (raw[index] + 1) % 10
        return raw

    return edit


DATA_CASES = {
    "bad magic": (dict(edit_raw=_set(2, 0x07)), "bad IDX magic number"),
    "wrong dims": (dict(edit_raw=_set(7, 0x61)), "dimensions 60001; expected 60000"),
    "truncated gzip": (dict(edit_gz=lambda gz: gz[: len(gz) // 2]), "truncated gzip"),
    "short file": (dict(edit_raw=lambda raw: raw[:-100]), "shorter than its header"),
    "label out of range": (dict(edit_raw=_set(8 + 123, 10)), "value 10 is out of range"),
    "wrong sha256": (dict(edit_raw=_bump(8 + 123)), "sha256"),
}  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_dataset_cache(monkeypatch):
    monkeypatch.setattr(datasets, "_CACHE", {})


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_corrupted_mnist_in_data_dir(case, tmp_path, capsys):
    kwargs, words = DATA_CASES[case]
    bad = corrupted_copy(tmp_path / "data", bundled_mnist_dir(), **kwargs)
    line = one_line(
        ["compare", "--dataset", "mnist", "--data-dir", str(tmp_path / "data"), *TINY,
         "--out", str(tmp_path / "run")], capsys,
    )  # fmt: skip
    assert str(bad) in line and words in line, line


def test_corrupted_fashion_through_initlab_data(tmp_path, capsys, monkeypatch):
    bad = corrupted_copy(tmp_path / "fashion-mnist", SHARED / "fashion-mnist", edit_raw=_bump(15))
    monkeypatch.setenv("INITLAB_DATA", str(tmp_path))
    monkeypatch.setenv("INITLAB_OFFLINE", "1")
    line = one_line(["compare", "--dataset", "fashion-mnist", *TINY,
                     "--out", str(tmp_path / "run")], capsys)  # fmt: skip
    assert str(bad) in line and "sha256" in line and "expected" in line, line


TOML_CASES = {
    "unknown key": ('batchsize = 64', ["Unknown key 'batchsize'", "Did you mean 'batch_size'"]),
    "wrong type seeds": ('seeds = "three"', ["'seeds'", "three"]),
    "wrong type lr": ('lr = [0.1]', ["'lr'"]),
    "wrong type inits": ('inits = 3', ["'inits'"]),
    "negative lr": ('lr = -0.1', ["'lr'", "greater than 0"]),
    "zero seeds": ('seeds = 0', ["'seeds'", "greater than or equal to 1"]),
    "negative std": ('inits = ["normal:std=-1"]', ["std"]),
    "unknown activation": ('activation = "rleu"', ["Did you mean 'relu'"]),
    "unknown init": ('inits = ["he_norml"]', ["Did you mean 'he_normal'"]),
    "unknown dataset": ('dataset = "mnits"', ["Did you mean 'mnist'"]),
    "dropout 1": ('arch = "mlp:32x2,dropout=1.0"', ["dropout", "[0, 1)"]),
    "dropout negative": ('arch = "mlp:32x2,dropout=-0.1"', ["dropout", "[0, 1)"]),
    "bad toml": ('lr = = 1', ["not valid TOML"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(TOML_CASES))
def test_bad_toml_config(case, tmp_path, capsys):
    text, words = TOML_CASES[case]
    path = tmp_path / "exp.toml"
    path.write_text('dataset = "digits"\nsteps = 20\n' * ("dataset" not in text) + text + "\n")
    line = one_line(["compare", "--config", str(path), "--out", str(tmp_path / "run"),
                     "--no-report", "--threads", "1"], capsys)  # fmt: skip
    for word in words:
        assert word in line, line


@pytest.mark.parametrize(
    "args, words",
    [
        (["--seeds", "three"], ["'three' is not a valid integer"]),
        (["--lr", "fast"], ["'fast' is not a valid float"]),
        (["--inits", "normal:std=-0.5"], ["std"]),
        (["--arch", "mlp:32x2,dropout=1.5"], ["dropout", "[0, 1)"]),
        (["--batch-size", "0"], ["'batch_size'"]),
        (["--config", "missing.toml"], ["missing.toml"]),
        (["--no-such-option", "1"], ["--no-such-option"]),
    ],
)
def test_bad_options(args, words, tmp_path, capsys):
    line = one_line(["compare", "--dataset", "digits", "--steps", "20", "--no-report",
                     "--out", str(tmp_path / "run"), *args], capsys)  # fmt: skip
    for word in words:
        assert word in line, line


def test_debug_shows_the_traceback(tmp_path, capsys):
    with pytest.raises(Exception, match="Did you mean 'relu'"):
        main(["--debug", "compare", "--activation", "rleu", "--out", str(tmp_path)])


def test_ctrl_c_says_how_to_resume_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    """Ctrl-C during training: one line, status 130, and the same command resumes exactly."""
    import contextlib

    from initlab.cli import progress

    args = ["compare", "--dataset", "digits", *TINY, "--seeds", "2"]
    main([*args, "--out", str(tmp_path / "whole")])
    capsys.readouterr()

    @contextlib.contextmanager
    def interrupting_bar(label):
        def on_step(step, steps):
            if step == 55:  # after the checkpoint of step 50
                raise KeyboardInterrupt

        yield on_step

    with monkeypatch.context() as m:
        m.setattr(progress, "progress_bar", interrupting_bar)
        code, err = run_cli([*args, "--out", str(tmp_path / "cut")], capsys)
    assert code == 130 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "rerun the same command to resume" in err.lower(), err
    assert list((tmp_path / "cut" / "checkpoints").glob("*.safetensors"))

    main([*args, "--out", str(tmp_path / "cut")])
    from initlab.results.store import Store

    with Store.open(tmp_path / "whole") as a, Store.open(tmp_path / "cut") as b:
        want = {r.key: r.metrics for r in a.runs()}
        got = {r.key: r.metrics for r in b.runs()}
    assert want == got and len(want) == 2
