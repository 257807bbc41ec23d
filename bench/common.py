"""Shared pieces of the benchmark entries: a result record, timing, machine summary."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    """One entry's measurement: seconds (or other units) for initlab and the baseline."""

    initlab: float
    baseline: float
    ratio: float  # > 1 means initlab is better, whatever the unit
    met: bool
    unit: str = "s"
    notes: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)  # Markdown put after the table


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Minimum wall time of ``repeat`` calls (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}; {os.cpu_count()} cores; torch {torch.__version__}; "
        f"{torch.get_num_threads()} threads; Python {platform.python_version()}"
    )


def load_average() -> str:
    """The 1-minute load average (how busy the machine was), or "n/a"."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"
