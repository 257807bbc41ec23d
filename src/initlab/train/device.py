"""Which device a run trains on: checked once, at the edge, with a one-line error.

>>> check_device("cpu")
'cpu'
>>> check_device("tpu")
Traceback (most recent call last):
...
initlab.errors.ConfigError: Unknown device 'tpu'; allowed: cpu, cuda, mps (e.g. cuda:1).
"""

from __future__ import annotations

import torch

from initlab.errors import ConfigError

DEVICES = ("cpu", "cuda", "mps")


def check_device(device: str | torch.device) -> str:
    """``device`` as a string once it is known to be usable here; else one ConfigError line
    saying what this torch has (a CPU-only build has no CUDA, for example)."""
    text = str(device).strip().lower()
    kind, _, index = text.partition(":")
    if kind not in DEVICES or (index and not index.isdigit()):
        raise ConfigError(
            f"Unknown device {str(device)!r}; allowed: {', '.join(DEVICES)} (e.g. cuda:1)."
        )
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "no visible GPU"
            raise ConfigError(
                f"Device {text!r} is not available: torch {torch.__version__} here has {build}. "
                "Use --device cpu, or run on a machine with a CUDA GPU."
            )
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(
                f"Device {text!r} is not available: {torch.cuda.device_count()} CUDA device(s) here."
            )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"Device {text!r} is not available here (no Apple MPS). Use --device cpu."
        )
    return text
