"""The scalars every adapter logs for one watch record, with their tags.

Per layer (``initlab/<layer>/<stat>``): ``act_mean`` and ``act_std`` of the layer's output,
``grad_std`` and ``grad_norm`` of the loss gradient w.r.t. that output, ``saturation``
(bounded activations), ``dead_units`` (ReLUs), ``weight_std`` (weight layers) and
``weight_grad_std`` / ``weight_grad_norm`` of the weight's gradient. A statistic that does
not apply, or is not finite, is left out rather than logged as a gap.

>>> from initlab.results.probe_records import LayerStats, ProbeRecord
>>> scalars(ProbeRecord(layers=[LayerStats("fc", "linear", "Linear", 0, mean=0.5, std=2.0)]))
{'initlab/fc/act_mean': 0.5, 'initlab/fc/act_std': 2.0}
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any

from torch import nn

from initlab.probe.watch import Watch, watch
from initlab.results.probe_records import ProbeRecord, WatchHistory

# (tag suffix, LayerStats field) in the order they are logged
LAYER_STATS = (
    ("act_mean", "mean"), ("act_std", "std"), ("grad_std", "grad_std"),
    ("grad_norm", "grad_norm"), ("saturation", "saturation"), ("dead_units", "dead_units"),
    ("weight_std", "weight_std"),
)  # fmt: skip


def layer_tag(layer: str, stat: str, prefix: str = "initlab") -> str:
    """``initlab/<layer>/<stat>``; the model itself (a single-layer model, name "") is
    ``model``.

    >>> layer_tag("transformer.h.0", "act_std")
    'initlab/transformer.h.0/act_std'
    """
    return f"{prefix}/{layer or 'model'}/{stat}"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def scalars(record: ProbeRecord, prefix: str = "initlab") -> dict[str, float]:
    """Tag -> value of one record's per-layer statistics (layers in call order)."""
    out: dict[str, float] = {}
    for layer in record.layers:
        for stat, field in LAYER_STATS:
            value = getattr(layer, field)
            if _finite(value):
                out[layer_tag(layer.name, stat, prefix)] = float(value)
    for grad in record.weight_grads:  # the probe follows ``<layer>.weight`` only
        for stat, value in (("weight_grad_std", grad.std), ("weight_grad_norm", grad.norm)):
            if _finite(value):
                out[layer_tag(grad.layer, stat, prefix)] = float(value)
    return out


class WatchSession:
    """One :func:`initlab.watch` opened and closed by a framework's callbacks instead of a
    ``with`` block, handing out each record once for logging.

    >>> import torch
    >>> from torch import nn
    >>> model, session = nn.Sequential(nn.Linear(2, 2), nn.Tanh()), WatchSession(every=1)
    >>> session.start(model)
    >>> _ = model(torch.ones(4, 2))
    >>> [r.step for r in session.new_records()], session.close()
    ([0], [])
    """

    def __init__(self, every: int = 1, **options: Any) -> None:
        self.every, self.options = every, options
        self.history: WatchHistory | None = None  # the last (or current) run's records
        self.watch: Watch | None = None
        self._context: AbstractContextManager[Watch] | None = None
        self._handed = 0

    def start(self, model: nn.Module) -> None:
        """Hook ``model``; a run still open is closed first."""
        self.close()
        self._context = watch(model, self.every, **self.options)
        self.watch = self._context.__enter__()
        self.history, self._handed = self.watch.history, 0

    def new_records(self) -> list[ProbeRecord]:
        """Records not handed out yet, the current step's included (its backward has run)."""
        if self.watch is not None:
            self.watch.flush()
        if self.history is None:
            return []
        new = self.history.records[self._handed :]
        self._handed = len(self.history.records)
        return new

    def close(self, error: BaseException | None = None) -> list[ProbeRecord]:
        """Remove the hooks; returns the records not handed out yet (none after an error,
        whose step may be half done)."""
        if self._context is None:
            return []
        context, self._context = self._context, None
        if error is None:
            context.__exit__(None, None, None)  # flushes the last sampled step
        else:
            context.__exit__(type(error), error, error.__traceback__)
        new = [] if error is not None else self.new_records()
        self.watch = None
        return new

    def abort(self) -> None:
        """Remove the hooks without recording the step under way (after a failed run)."""
        self.close(RuntimeError("watch aborted"))
