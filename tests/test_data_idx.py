"""The IDX reader on real MNIST files, and on real files corrupted in a temp folder."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from initlab.data.datasets import MNIST_FILES, bundled_mnist_dir
from initlab.data.idx import read_idx
from initlab.errors import DataError

LABELS = "t10k-labels-idx1-ubyte"
LABELS_SHA = next(f.sha256 for f in MNIST_FILES if f.stem == LABELS)


def real(stem: str = LABELS) -> Path:
    return bundled_mnist_dir() / f"{stem}.gz"


def rewrite(tmp_path: Path, edit) -> Path:
    """A gzip copy of the real test labels whose uncompressed bytes went through ``edit``."""
    raw = bytearray(gzip.decompress(real().read_bytes()))
    path = tmp_path / f"{LABELS}.gz"
    path.write_bytes(gzip.compress(bytes(edit(raw))))
    return path


def one_line_error(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        read_idx(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_reads_real_mnist_labels_and_images():
    labels = read_idx(real(), sha256=LABELS_SHA, expected_shape=(10000,))
    assert labels.dtype == torch.uint8 and labels.shape == (10000,)
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first ten
    assert torch.bincount(labels.long()).tolist()[:2] == [980, 1135]
    images = read_idx(real("t10k-images-idx3-ubyte"), expected_shape=(None, 28, 28))
    assert images.shape == (10000, 28, 28) and int(images.max()) == 255


def test_reads_uncompressed_files(tmp_path):
    raw = tmp_path / LABELS
    raw.write_bytes(gzip.decompress(real().read_bytes()))
    assert torch.equal(read_idx(raw, sha256=LABELS_SHA), read_idx(real()))


def test_truncated_gzip(tmp_path):
    path = tmp_path / f"{LABELS}.gz"
    data = real().read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated gzip" in one_line_error(path)


def test_not_gzip(tmp_path):
    path = tmp_path / f"{LABELS}.gz"
    path.write_bytes(b"this is not gzip at all" * 10)
    assert "not a valid gzip" in one_line_error(path)


def test_wrong_magic_number(tmp_path):
    def edit(raw):
        raw[2] = 0x07  # no such IDX type code
        return raw

    assert "magic number 0x00000701" in one_line_error(rewrite(tmp_path, edit))


def test_file_shorter_than_header_says(tmp_path):
    message = one_line_error(rewrite(tmp_path, lambda raw: raw[:-100]))
    assert "shorter than its header says" in message and "9900 data bytes" in message


def test_file_longer_than_header_says(tmp_path):
    assert "longer" in one_line_error(rewrite(tmp_path, lambda raw: raw + b"\x00"))


def test_wrong_dimensions(tmp_path):
    path = tmp_path / f"{LABELS}.gz"
    shutil.copy(real(), path)
    message = one_line_error(path, expected_shape=(60000,))
    assert "dimensions 10000; expected 60000" in message


def test_wrong_sha256(tmp_path):
    def edit(raw):
        raw[100] = (raw[100] + 1) % 10  # still a valid label: only the checksum can tell
        return raw

    assert "sha256" in one_line_error(rewrite(tmp_path, edit), sha256=LABELS_SHA)


def test_value_out_of_range(tmp_path):
    def edit(raw):
        raw[8 + 5] = 12
        return raw

    message = one_line_error(rewrite(tmp_path, edit), sha256=LABELS_SHA, value_range=(0, 9))
    assert "value 12 is out of range; expected 0..9" in message


def test_missing_file(tmp_path):
    assert "not found" in one_line_error(tmp_path / "nope.gz")
