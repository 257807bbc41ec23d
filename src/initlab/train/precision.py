"""Numeric precision of training: ``fp32`` (the default, exact against a plain loop) or
``bf16``: matmuls and convolutions under ``torch.autocast`` in bfloat16 (AMX / AVX-512 BF16
on recent CPUs, tensor cores on GPUs), with float32 master weights, optimizer state and loss.

Lightning's names are accepted too: ``32-true`` / ``32`` for fp32, ``bf16-mixed`` for bf16.

>>> canonical_precision("bf16-mixed"), canonical_precision("32-true")
('bf16', 'fp32')
>>> canonical_precision("fp16")
Traceback (most recent call last):
...
initlab.errors.ConfigError: Unknown precision 'fp16'; allowed: fp32, bf16 (or Lightning's 32-true, bf16-mixed).
"""

from __future__ import annotations

import contextlib

import torch

from initlab.errors import ConfigError

PRECISIONS = {"fp32": "fp32", "32": "fp32", "32-true": "fp32", "float32": "fp32",
              "bf16": "bf16", "bf16-mixed": "bf16", "bfloat16": "bf16"}  # fmt: skip


def canonical_precision(name: str) -> str:
    """``fp32`` or ``bf16`` for any accepted spelling; one ConfigError line otherwise."""
    key = str(name).strip().lower()
    if key not in PRECISIONS:
        raise ConfigError(
            f"Unknown precision {name!r}; allowed: fp32, bf16 (or Lightning's 32-true, bf16-mixed)."
        )
    return PRECISIONS[key]


def bf16_note(precision: str, device: str | torch.device) -> str | None:
    """A line to tell the user when bf16 has no fast path on ``device`` (then autocast runs
    bf16 matmuls in software, slower than fp32), else None."""
    if precision != "bf16":
        return None
    kind = torch.device(device).type
    if kind == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return ("bf16 on this CPU has no hardware path (no AVX-512 BF16 / AMX): its matmuls "
                "run emulated and are slower than fp32; use --precision fp32 here.")  # fmt: skip
    if kind == "cuda" and not torch.cuda.is_bf16_supported():
        return "bf16 is not supported by this GPU; use --precision fp32."
    return None


def autocast(precision: str, device: torch.device):
    """The context a forward runs in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
