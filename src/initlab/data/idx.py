"""Our own IDX reader (the MNIST file format), strict about everything it reads.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order. The reader
checks the magic number, the dimensions (when the caller expects some), that the data is
exactly as long as the header says, and the sha256 of the *uncompressed* bytes. Each problem
is a one-line :class:`~initlab.errors.DataError` that names the file and what was expected.

>>> from importlib.resources import files
>>> labels = read_idx(files("initlab.data") / "mnist" / "t10k-labels-idx1-ubyte.gz")
>>> labels.shape, labels.dtype
(torch.Size([10000]), torch.uint8)
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from math import prod
from pathlib import Path

import numpy as np
import torch

from initlab.errors import DataError

# IDX dtype code -> (numpy big-endian dtype, name)
DTYPES: dict[int, tuple[str, str]] = {
    0x08: (">u1", "uint8"),
    0x09: (">i1", "int8"),
    0x0B: (">i2", "int16"),
    0x0C: (">i4", "int32"),
    0x0D: (">f4", "float32"),
    0x0E: (">f8", "float64"),
}


def read_bytes(path: str | os.PathLike) -> bytes:
    """The uncompressed bytes of ``path`` (gunzipped when it ends in ``.gz``)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror}).") from None
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(
            f"{path}: truncated gzip stream ({len(raw)} bytes on disk); expected a complete "
            "gzip-compressed IDX file. Download it again."
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(
            f"{path}: not a valid gzip file ({e}); expected a gzip-compressed IDX file. "
            "Download it again."
        ) from None


def sha256_hex(data: bytes) -> str:
    """The sha256 of ``data`` as 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


def parse_idx(
    data: bytes, where: str, expected_shape: tuple[int | None, ...] | None = None
) -> torch.Tensor:
    """Decode IDX ``data`` into a tensor; ``where`` names the file in error messages.

    ``expected_shape`` checks the dimensions; ``None`` entries accept any size.
    """
    if len(data) < 4:
        raise DataError(f"{where}: {len(data)} bytes is too short for an IDX header (4+ bytes).")
    zero1, zero2, code, ndim = data[0], data[1], data[2], data[3]
    if zero1 != 0 or zero2 != 0 or code not in DTYPES or ndim == 0:
        raise DataError(
            f"{where}: bad IDX magic number 0x{data[:4].hex()}; expected 0x0000TTNN with type "
            f"TT in {{{', '.join(f'{c:02x}' for c in DTYPES)}}} and NN >= 1 dimensions."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{where}: file ends inside its header ({len(data)} bytes, header needs {header})."
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if expected_shape is not None:
        ok = len(dims) == len(expected_shape) and all(
            e is None or e == d for d, e in zip(dims, expected_shape, strict=False)
        )
        if not ok:
            want = "x".join("N" if e is None else str(e) for e in expected_shape)
            raise DataError(f"{where}: dimensions {'x'.join(map(str, dims))}; expected {want}.")
    np_dtype, _ = DTYPES[code]
    itemsize = np.dtype(np_dtype).itemsize
    need = prod(dims) * itemsize
    have = len(data) - header
    if have != need:
        what = "shorter" if have < need else "longer"
        raise DataError(
            f"{where}: file is {what} than its header says ({have} data bytes; dimensions "
            f"{'x'.join(map(str, dims))} need {need})."
        )
    values = np.frombuffer(data, dtype=np_dtype, count=prod(dims), offset=header)
    # Native byte order and a private copy: the tensor must not alias the bytes object.
    return torch.from_numpy(values.astype(values.dtype.newbyteorder("="))).reshape(dims)


def read_idx(
    path: str | os.PathLike,
    *,
    sha256: str | None = None,
    expected_shape: tuple[int | None, ...] | None = None,
    value_range: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Read one IDX file (``.gz`` or raw) into a tensor, checking it on the way.

    ``value_range`` (inclusive) checks every value, e.g. labels in 0..9.

    ``sha256`` is the digest of the uncompressed bytes; a mismatch is a :class:`DataError`
    (checked after the header and length, so those problems get their own message).
    """
    data = read_bytes(path)
    # Structure first: a bad header or a short file gets its own precise message.
    tensor = parse_idx(data, str(path), expected_shape)
    if value_range is not None and tensor.numel():
        low, high = int(tensor.min()), int(tensor.max())
        if low < value_range[0] or high > value_range[1]:
            bad = low if low < value_range[0] else high
            raise DataError(
                f"{path}: value {bad} is out of range; expected {value_range[0]}..{value_range[1]}."
            )
    if sha256 is not None:
        got = sha256_hex(data)
        if got != sha256:
            raise DataError(
                f"{path}: sha256 of the uncompressed bytes is {got[:16]}..., expected "
                f"{sha256[:16]}...; the file is corrupted or not the one expected. Download it "
                "again."
            )
    return tensor
