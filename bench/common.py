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


class StepWindow:
    """An ``on_step`` callback timing the steps after ``first`` up to ``last`` (1-based):
    warm-up steps before the window, setup and the final evaluation after it are left out.

    >>> w = StepWindow(1, 3)
    >>> for step in (1, 2, 3, 4):
    ...     w(step, 4)
    >>> w.per_step >= 0
    True
    """

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.marks: dict[int, float] = {}

    def __call__(self, step: int, total: int) -> None:
        if step in (self.first, self.last):
            self.marks[step] = time.perf_counter()

    @property
    def per_step(self) -> float:
        """Seconds per step inside the window."""
        return (self.marks[self.last] - self.marks[self.first]) / (self.last - self.first)


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


def _busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (/proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    import resource

    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class OtherLoad:
    """How busy OTHER processes kept the machine during a measurement, in cores.

    The 1-minute load average cannot tell: it includes the benchmark's own previous process.
    Here the machine's busy CPU time (/proc/stat) minus this process's and its children's
    (getrusage) over the wall time is what others used; a figure above ``LOADED`` cores
    means the measurement is noise.

    >>> with OtherLoad() as load:
    ...     _ = sum(range(10_000))
    >>> load.cores >= 0 or load.cores != load.cores  # NaN off Linux
    True
    """

    LOADED = 0.1

    def __enter__(self) -> OtherLoad:
        self.cores = float("nan")
        self._busy, self._own, self._t = _busy_seconds(), _own_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        busy = _busy_seconds()
        wall = time.perf_counter() - self._t
        if busy is not None and self._busy is not None and wall > 0:
            others = (busy - self._busy) - (_own_seconds() - self._own)
            self.cores = max(others, 0.0) / wall
