"""Datasets by name: bundled MNIST, Fashion-MNIST search/download, digits, blobs."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

from initlab.data import datasets, load, sources
from initlab.data.idx import read_idx
from initlab.errors import DataError, InitSpecError

SHARED = Path(os.environ["INITLAB_DATA"])


@pytest.fixture
def no_fashion(tmp_path, monkeypatch):
    """Every place Fashion-MNIST could be found is empty, and nothing is cached."""
    monkeypatch.setenv("INITLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "SYSTEM_DATASETS", tmp_path / "system")
    monkeypatch.setattr(sources, "CHECKOUT_DATA", None)
    monkeypatch.setattr(datasets, "_CACHE", {})
    return tmp_path


def test_mnist_is_bundled_with_fixed_splits():
    data = load("mnist")
    assert (len(data.train), len(data.val), len(data.test)) == (55000, 5000, 10000)
    assert data.in_shape == (1, 28, 28) and data.n_classes == 10
    assert "initlab" in data.source and "last 5,000" in data.split_note
    assert data.train.x.dtype == torch.uint8
    # validation = the last 5,000 images of the official training file, in order
    train_file = read_idx(datasets.bundled_mnist_dir() / "train-images-idx3-ubyte.gz")
    assert torch.equal(data.val.x[:, 0], train_file[55000:])
    assert data.test.y[:5].tolist() == [7, 2, 1, 0, 4]
    x = data.train.features(torch.tensor([[0, 1], [2, 3]]))
    assert x.dtype == torch.float32 and x.shape == (2, 2, 1, 28, 28)
    assert 0.0 <= float(x.min()) and float(x.max()) == 1.0
    assert torch.equal(x[0, 0], data.train.x[0].float() / 255)
    assert load("mnist") is data  # loaded once per process


def test_fashion_found_through_initlab_data():
    data = load("fashion-mnist")
    assert Path(data.source) == SHARED / "fashion-mnist"
    assert (len(data.train), len(data.val), len(data.test)) == (55000, 5000, 10000)
    assert torch.bincount(data.test.y).tolist() == [1000] * 10


def test_fashion_data_dir_comes_first(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_CACHE", {})
    for f in (SHARED / "fashion-mnist").iterdir():
        shutil.copy(f, tmp_path / f.name)
    assert load("fashion-mnist", data_dir=tmp_path).source == str(tmp_path)


def test_fashion_missing_offline_says_how_to_get_it(no_fashion):
    with pytest.raises(DataError) as info:
        load("fashion-mnist", download=False)
    message = str(info.value)
    assert "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message
    assert str(no_fashion / "system" / "fashion-mnist") in message


def test_fashion_download_verified_into_cache(no_fashion, monkeypatch):
    served = []

    def fake_urlopen(url, timeout):
        served.append(url)
        return io.BytesIO((SHARED / "fashion-mnist" / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(sources.urllib.request, "urlopen", fake_urlopen)
    data = load("fashion-mnist", download=True)
    assert len(served) == 4 and data.source == str(
        no_fashion / "cache" / "initlab" / "fashion-mnist"
    )
    assert len(data.test) == 10000


def test_fashion_download_with_wrong_checksum_is_not_kept(no_fashion, monkeypatch):
    def fake_urlopen(url, timeout):
        return io.BytesIO(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05"))

    monkeypatch.setattr(sources.urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(DataError, match=r"sha256 of the downloaded data .* not keeping it"):
        load("fashion-mnist", download=True)
    assert not list((no_fashion / "cache").rglob("*.gz"))


def test_fashion_offline_download_failure_is_one_line(no_fashion, monkeypatch):
    def fake_urlopen(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(sources.urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(DataError, match="download failed .Name or service not known.") as info:
        load("fashion-mnist", download=True)
    assert "\n" not in str(info.value)


def test_corrupted_fashion_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_CACHE", {})
    for f in (SHARED / "fashion-mnist").iterdir():
        shutil.copy(f, tmp_path / f.name)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(bad.read_bytes()))
    raw[5000] = (raw[5000] + 1) % 10  # a valid label, so only the checksum can tell
    bad.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="sha256") as info:
        load("fashion-mnist", data_dir=tmp_path)
    assert str(bad) in str(info.value)


def test_digits_and_blobs():
    digits = load("digits")
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1197, 300, 300)
    assert digits.in_shape == (1, 8, 8) and float(digits.train.features().max()) == 1.0
    blobs = load("blobs:classes=4,features=8,seed=3")
    assert (
        blobs.in_shape == (8,)
        and blobs.n_classes == 4
        and blobs.name == "blobs:features=8,classes=4,seed=3"
    )
    again = datasets._LOADERS["blobs"](n=3000, features=8, classes=4, std=1.0, seed=3)
    other = datasets._LOADERS["blobs"](n=3000, features=8, classes=4, std=1.0, seed=4)
    assert torch.equal(again.train.x, blobs.train.x)
    assert not torch.equal(other.train.x, blobs.train.x)
    # well separated blobs: nearest centre of the training means classifies the test set
    means = torch.stack([blobs.train.x[blobs.train.y == c].mean(0) for c in range(4)])
    predicted = torch.cdist(blobs.test.x, means).argmin(1)
    assert (predicted == blobs.test.y).float().mean() > 0.95


@pytest.mark.parametrize(
    "spec, message",
    [
        ("mnsit", "Did you mean 'mnist'"),
        ("blobs:colours=3", "Unknown option 'colours'"),
        ("blobs:classes=two", "must be a int"),
        ("blobs:classes=1", "classes >= 2"),
    ],
)
def test_bad_dataset_specs(spec, message):
    with pytest.raises(InitSpecError, match=message):
        load(spec)
