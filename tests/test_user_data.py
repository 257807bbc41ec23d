"""Your own data in compare: arrays, tensors, torch Datasets and ``--data pkg.mod:function``;
the same one-line errors for shapes and labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import initlab
from initlab.cli import main
from initlab.data import load, user
from initlab.errors import DataError

RNG = np.random.default_rng(0)


CENTERS = RNG.normal(scale=4.0, size=(3, 6))


def _blobs(n, centers=CENTERS):
    """Well separated Gaussian blobs: a net trained on them reaches high accuracy."""
    y = RNG.integers(0, len(centers), n)
    features = centers.shape[1]
    return (centers[y] + RNG.normal(size=(n, features))).astype("float32"), y


X, Y = _blobs(600)
XT, YT = _blobs(200)


def test_arrays_train_and_rerun_reuses_them(tmp_path):
    kw = dict(arch="mlp:32", inits="lecun_normal", seeds=1, steps=150, eval_every=50, lr=0.1,
              batch_size=32, out=tmp_path, report=False)  # fmt: skip
    first = initlab.compare(data=(X, Y, XT, YT), **kw)
    assert first.config["dataset"].startswith("data:") and first.trained == 1
    assert first.records[0].test_accuracy > 0.9  # the blobs are separable: it really trained
    again = initlab.compare(data=(torch.tensor(X), torch.tensor(Y), XT, YT), **kw)
    assert again.trained == 0 and again.reused == 1  # same data, same key
    other = initlab.compare(data=(X[::-1].copy(), Y[::-1].copy(), XT, YT), **kw)
    assert other.config["dataset"] != first.config["dataset"] and other.trained == 1


def test_torch_datasets_give_the_same_dataset():
    train = torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(Y))
    test = torch.utils.data.TensorDataset(torch.tensor(XT), torch.tensor(YT))
    a, b = user.as_dataset((train, test)), user.as_dataset((X, Y, XT, YT))
    assert a.name == b.name and torch.equal(a.train.x, b.train.x)
    assert (len(a.train), len(a.val), len(a.test)) == (540, 60, 200)
    assert user.register(a) == a.name and load(a.name) is a


@pytest.mark.parametrize(
    "data, words",
    [
        ((X, Y[:10], XT, YT), "x_train has 600 rows but y_train has 10"),
        ((X, Y, XT[:, :3], YT), "x_test rows (3,)"),
        ((X, np.eye(3)[Y], XT, YT), "not one-hot"),
        ((X, Y - 1, XT, YT), "labels are 0..C-1"),
        ((X, Y + 0.5, XT, YT), "integer class labels"),
        ((X, np.zeros(600, int), XT, np.zeros(200, int)), "one class only"),
        (("a", "b", "c"), "give a Dataset"),
    ],
)
def test_bad_data_is_one_line(data, words):
    with pytest.raises(DataError) as info:
        user.as_dataset(data)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_cli_data_function(tmp_path, monkeypatch, capsys):
    (tmp_path / "mydata.py").write_text(
        "import numpy as np\n"
        "def load():\n"
        "    rng = np.random.default_rng(1)\n"
        "    x = rng.normal(size=(300, 4)).astype('float32')\n"
        "    y = (x[:, 0] > 0).astype(int)\n"
        "    return x[:200], y[:200], x[200:], y[200:]\n"
        "def broken():\n"
        "    raise RuntimeError('no file')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    code = main(
        [
            "compare",
            "--data",
            "mydata:load",
            "--arch",
            "mlp:8",
            "--steps",
            "20",
            "--seeds",
            "1",
            "--inits",
            "he_normal",
            "--no-report",
            "--out",
            str(out),
        ]
    )
    assert code in (0, None) and (out / "summary.json").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["compare", "--data", "mydata:broken", "--out", str(tmp_path / "r2")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "no file" in err and err.count("\n") == 0
    assert not (tmp_path / "r2").exists()
