"""`initlab histogram` and `initlab probe` through initlab.cli.main."""

from __future__ import annotations

import json

import pytest
from torch import nn

from initlab.cli import main
from initlab.errors import InitSpecError
from initlab.models.factory import build_model, load_factory
from initlab.results.probe_records import HistogramRun


def small_cnn(channels: int = 4) -> nn.Module:
    """A factory the probe command loads by path from this very module."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(channels * 8 * 8, 10),
    )  # fmt: skip


NOT_A_MODEL = 42


def _exit_code(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr().err


def test_histogram_writes_png_stats_and_prints_diagnosis(tmp_path, capsys):
    argv = ["histogram", "--activation", "sigmoid", "--init", "normal:std=1", "--layers", "5",
            "--width", "100", "--samples", "1000", "--seed", "0", "--out", str(tmp_path)]  # fmt: skip
    main(argv)
    out = capsys.readouterr().out
    assert "saturated" in out
    png = (tmp_path / "histogram.png").read_bytes()
    assert png[:4] == b"\x89PNG"
    stats = json.loads((tmp_path / "stats.json").read_text())
    [run] = [HistogramRun.from_dict(r) for r in stats["runs"]]
    assert (run.activation, run.init, run.seed, run.bias) == ("sigmoid", "normal", 0, False)
    assert [f.kind for f in run.probe.findings] == ["saturated"]
    main(argv)  # same seed: the same figure, byte for byte
    assert (tmp_path / "histogram.png").read_bytes() == png


def test_histogram_grid_from_comma_separated_lists(tmp_path, capsys):
    main(["histogram", "--inits", "normal:std=0.01,lecun_normal", "--activations", "sigmoid,tanh",
          "--layers", "2", "--width", "16", "--samples", "64", "--out", str(tmp_path)])  # fmt: skip
    runs = json.loads((tmp_path / "stats.json").read_text())["runs"]
    assert [(r["activation"], r["init"]) for r in runs] == [
        ("sigmoid", "normal:std=0.01"), ("sigmoid", "lecun_normal"),
        ("tanh", "normal:std=0.01"), ("tanh", "lecun_normal"),
    ]  # fmt: skip
    assert "collapsed" in capsys.readouterr().out


def test_histogram_bad_init_is_one_line_exit_2(tmp_path, capsys):
    code, err = _exit_code(["histogram", "--init", "he_normol", "--out", str(tmp_path)], capsys)
    assert code == 2 and "he_normal" in err and err.count("\n") == 1


def test_probe_command_on_a_factory_in_this_module(capsys):
    main(["probe", "--model", f"{__name__}:small_cnn:channels=3", "--input-shape", "1,8,8",
          "--batch", "32", "--init", "he_normal"])  # fmt: skip
    out = capsys.readouterr().out
    assert "initlab probe" in out and "conv" in out and "relu" in out
    assert "diagnosis" in out or "Try:" in out


def test_probe_command_writes_json(tmp_path, capsys):
    path = tmp_path / "probe.json"
    main(["probe", "--model", f"{__name__}:small_cnn", "--input-shape", "1,8,8", "--batch", "16",
          "--json", str(path)])  # fmt: skip
    record = json.loads(path.read_text())
    assert [x["name"] for x in record["layers"]] == ["0", "1", "3"]
    assert record["samples"] == 16


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ("no_such_package.models:make", "Cannot import module 'no_such_package.models'"),
        (f"{__name__}:small_cnm", "Did you mean 'small_cnn'"),
        (f"{__name__}:NOT_A_MODEL", "not a callable"),
        ("no-colon-here", "package.module:factory"),
        (f"{__name__}:small_cnn:width=3", "unexpected keyword argument 'width'"),
    ],
)
def test_probe_command_bad_factory_is_one_line_exit_2(model, needle, capsys):
    code, err = _exit_code(["probe", "--model", model, "--input-shape", "4"], capsys)
    assert code == 2
    assert err.startswith("Error: ") and err.count("\n") == 1
    assert needle in err


def test_probe_command_bad_input_shape(capsys):
    code, err = _exit_code(["probe", "--model", f"{__name__}:small_cnn", "--input-shape", "1,x"],
                           capsys)  # fmt: skip
    assert code == 2 and "--input-shape" in err
    code, err = _exit_code(["probe", "--model", f"{__name__}:small_cnn", "--input-shape", "3,8,8"],
                           capsys)  # fmt: skip
    assert code == 2 and "failed on inputs of shape [256, 3, 8, 8]" in err


def test_probe_command_device_is_checked_once_and_cpu_gives_the_same_record(tmp_path, capsys):
    code, err = _exit_code(["probe", "--model", f"{__name__}:small_cnn", "--input-shape", "1,8,8",
                            "--device", "tpu"], capsys)  # fmt: skip
    assert code == 2 and "Unknown device 'tpu'; allowed: cpu, cuda, mps" in err
    assert err.count("\n") == 1
    paths = [tmp_path / "default.json", tmp_path / "cpu.json"]
    for path, extra in zip(paths, ([], ["--device", "CPU"]), strict=True):
        main(["probe", "--model", f"{__name__}:small_cnn", "--input-shape", "1,8,8", "--batch",
              "16", "--init", "he_normal", "--json", str(path), *extra])  # fmt: skip
    assert json.loads(paths[0].read_text()) == json.loads(paths[1].read_text())


def test_load_factory_and_build_model_directly():
    assert load_factory(f"{__name__}:small_cnn") is small_cnn
    model = build_model(f"{__name__}:small_cnn:channels=2")
    assert model[0].out_channels == 2
    with pytest.raises(InitSpecError, match="must return a torch.nn.Module"):
        build_model("builtins:dict")
