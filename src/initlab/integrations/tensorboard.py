"""Write :func:`initlab.watch` statistics to a TensorBoard ``SummaryWriter``.

Scalars are tagged ``initlab/<layer>/<stat>`` (see :mod:`initlab.integrations.common`) and
each layer's output histogram goes to ``initlab/<layer>/act``, at the record's step. In a
loop of your own, pass :func:`to_tensorboard` to ``watch(on_record=...)``, or write a whole
history afterwards with :func:`log_history`::

    from torch.utils.tensorboard import SummaryWriter
    from initlab.integrations.tensorboard import to_tensorboard

    writer = SummaryWriter("runs/gpt2")
    with initlab.watch(model, every=10, on_record=to_tensorboard(writer)) as w:
        for batch in loader:
            ...  # forward, backward, optimizer step
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from initlab.integrations.common import layer_tag, scalars
from initlab.results.probe_records import LayerStats, ProbeRecord, WatchHistory

try:  # the writer needs the tensorboard package, an extra of initlab
    from torch.utils.tensorboard import SummaryWriter
except ImportError as e:  # pragma: no cover - exercised with the library hidden
    raise ImportError(
        "initlab.integrations.tensorboard needs TensorBoard: pip install 'initlab[tensorboard]'"
    ) from e

__all__ = ["SummaryWriter", "log_history", "log_record", "to_tensorboard"]


def _histogram(writer: Any, tag: str, layer: LayerStats, step: int | None) -> bool:
    """One layer's fixed-bin counts as a TensorBoard histogram; values below / above the
    probe's range become one extra bucket at each end, so nothing is dropped."""
    h = layer.histogram
    if h is None or layer.count == 0:
        return False
    edges = h.edges
    limits, counts = list(edges[1:]), list(h.counts)
    if h.underflow:  # TensorBoard buckets are (previous limit, limit]; the first starts at min
        limits, counts = [h.lo, *limits], [h.underflow, *counts]
    if h.overflow:
        limits, counts = [*limits, max(layer.max, h.hi)], [*counts, h.overflow]
    n, mean, std = layer.count, layer.mean, layer.std
    writer.add_histogram_raw(
        tag, min=min(layer.min, h.lo), max=max(layer.max, h.hi), num=n, sum=mean * n,
        sum_squares=n * (std * std + mean * mean), bucket_limits=limits,
        bucket_counts=counts, global_step=step,
    )  # fmt: skip
    return True


def log_record(
    writer: Any,
    record: ProbeRecord,
    *,
    step: int | None = None,
    prefix: str = "initlab",
    histograms: bool = True,
) -> int:
    """Write one watch record; ``step`` defaults to the record's own. Returns the number of
    scalars written.

    >>> import tempfile
    >>> from initlab.results.probe_records import LayerStats
    >>> record = ProbeRecord(layers=[LayerStats("fc", "linear", "Linear", 0, std=1.0)], step=3)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     writer = SummaryWriter(d)
    ...     n = log_record(writer, record)
    ...     writer.close()
    >>> n
    1
    """
    at = record.step if step is None else step
    values = scalars(record, prefix)
    for tag, value in values.items():
        writer.add_scalar(tag, value, global_step=at)
    if histograms:
        for layer in record.layers:
            _histogram(writer, layer_tag(layer.name, "act", prefix), layer, at)
    return len(values)


def log_history(writer: Any, history: WatchHistory, **options: Any) -> int:
    """Write every record of a finished watch (``with watch(...) as w: ...``, then
    ``log_history(writer, w.history)``); options as for :func:`log_record`."""
    return sum(log_record(writer, record, **options) for record in history.records)


def to_tensorboard(writer: Any, **options: Any) -> Callable[[ProbeRecord], int]:
    """A listener for ``watch(on_record=...)`` that writes each record as it is taken;
    options as for :func:`log_record` (``prefix``, ``histograms``)."""

    def listener(record: ProbeRecord) -> int:
        return log_record(writer, record, **options)

    return listener
