"""Checkpoints: safetensors only (no pickle is ever loaded), written atomically.

A checkpoint is a flat dict of tensors plus a JSON metadata dict. The bytes go to a temp
file in the same folder, are fsynced, then renamed over the target: a process killed at any
moment leaves either the previous checkpoint or the new one, never half of one.

>>> import tempfile, pathlib, torch
>>> path = pathlib.Path(tempfile.mkdtemp()) / "c.safetensors"
>>> save_checkpoint(path, {"w": torch.ones(2)}, {"step": 3})
>>> tensors, meta = load_checkpoint(path)
>>> tensors["w"].tolist(), meta["step"]
([1.0, 1.0], 3)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from initlab.atomic import atomic_write_bytes
from initlab.errors import DataError

META_KEY = "initlab"
FORMAT_VERSION = 1


def save_checkpoint(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Write ``tensors`` and JSON-able ``meta`` to ``path`` atomically and durably."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {META_KEY: json.dumps({"format": FORMAT_VERSION, **meta}, allow_nan=True)}
    atomic_write_bytes(path, st_save(flat, metadata=header))


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; one-line DataError when unreadable."""
    path = Path(path)
    try:
        data = path.read_bytes()
        tensors = st_load(data)
        meta_text = _metadata(data).get(META_KEY)
        if meta_text is None:
            raise ValueError("no initlab metadata")
        meta = json.loads(meta_text)
    except (OSError, SafetensorError, ValueError) as e:
        raise DataError(
            f"{path}: not a readable initlab checkpoint ({str(e).splitlines()[0]}); delete it "
            "to start the run afresh."
        ) from None
    if meta.get("format") != FORMAT_VERSION:
        raise DataError(
            f"{path}: checkpoint format {meta.get('format')!r}; this initlab reads format "
            f"{FORMAT_VERSION}. Delete it to start the run afresh."
        )
    return tensors, meta


def _metadata(data: bytes) -> dict[str, str]:
    # safetensors layout: 8-byte little-endian header length, then the JSON header.
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    return header.get("__metadata__", {}) or {}
