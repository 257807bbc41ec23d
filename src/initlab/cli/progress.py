"""Progress for the ``progress(step, total)`` callback of the trainers: a rich bar on a
terminal, a plain line every few seconds in a pipe or a log (so a long run is never silent).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

LINE_EVERY_S = 5.0  # in a pipe: at most one progress line this often


@contextmanager
def progress_bar(description: str, stream: TextIO | None = None) -> Iterator:
    """Yield ``update(step, total)``; on a terminal the bar shows on stderr and disappears
    when done, elsewhere a line ``description: step 120/300 (40%), 85 steps/s`` is printed
    every :data:`LINE_EVERY_S` seconds."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield progress_lines(description, stream)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None, count="starting")

        def update(step: int, total: int) -> None:
            bar.update(task, completed=step, total=total, count=f"{step}/{total} steps")

        yield update


def progress_lines(
    description: str, stream: TextIO, every: float = LINE_EVERY_S,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[int, int], None]:  # fmt: skip
    """The pipe form: ``update(step, total)`` prints a line when ``every`` seconds have passed
    since the last one, and at the last step of a run that printed any (a run shorter than
    ``every`` stays quiet).

    >>> import io
    >>> out, now = io.StringIO(), iter([0.0, 1.0, 6.0, 7.0])
    >>> update = progress_lines("compare", out, every=5.0, clock=lambda: next(now))
    >>> for step in (1, 2, 3):
    ...     update(step, 3)
    >>> print(out.getvalue().strip())
    compare: step 2/3 (67%), 0.33 steps/s
    compare: step 3/3 (100%), 0.43 steps/s
    """
    start = clock()
    last, printed = start, False

    def update(step: int, total: int) -> None:
        nonlocal last, printed
        now = clock()
        if now - last < every and not (step == total and printed):
            return
        last, printed = now, True
        rate = step / (now - start) if now > start else 0.0
        share = f" ({100 * step / total:.0f}%)" if total else ""
        stream.write(f"{description}: step {step}/{total}{share}, {rate:.2g} steps/s\n")
        stream.flush()

    return update
