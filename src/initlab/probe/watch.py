"""``watch``: the probe's statistics during a training loop, every N training steps.

One :class:`~initlab.probe.hooks.Collector` samples a step's forward (and its backward) when
the step index is a multiple of ``every``; evaluation forwards (``model.eval()`` or
``torch.no_grad()``) are not steps and are skipped. The layer hooks are attached only for the
sampled steps, so the steps in between run with one hook on the root only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from initlab.errors import ConfigError
from initlab.probe.hooks import Collection, Collector, Ranges
from initlab.probe.record import Prediction, assemble, predict
from initlab.results.probe_records import ProbeRecord, WatchHistory


class Watch:
    """Handle returned by :func:`watch`: step counter, the plain history and its listeners."""

    def __init__(self, collector: Collector, every: int, on_record: list | None = None) -> None:
        self.collector = collector
        self.every = every
        self.forwards = 0  # training forward passes of the watched model so far
        self.history = WatchHistory(every=every)
        self.on_record: list[Callable[[ProbeRecord], object]] = list(on_record or [])
        self._sampled_step: int | None = None
        # the mean-field prediction of the first sampled step (at init), reused by the later
        # records: the theory describes the init distribution, and it costs a quadrature
        # per layer
        self._prediction: Prediction | None = None
        # per model call still running: None for a training step, else the collection an
        # evaluation forward put aside (it must not see the eval outputs)
        self._calls: list[tuple[bool, Collection | None]] = []

    def _on_forward(self, module: nn.Module, args) -> None:
        if not (module.training and torch.is_grad_enabled()):
            # an evaluation forward (model.eval() or no_grad) is not a step: hide it from an
            # open sample without flushing it, as its backward may still be to come
            self.history.eval_skipped += 1
            self._calls.append((False, self.collector.open))
            self.collector.open = None
            return
        self._calls.append((True, None))
        self.flush()  # the previous sampled step's backward has run by now
        step = self.forwards
        self.forwards += 1
        if step % self.every == 0:
            # the layer hooks live only for a sampled step: other steps run the model (and
            # its backward) with no hook but this one on the root
            # open first: attaching inside the model's call starts the functional watch
            # only for an open collection
            self.collector.begin()
            # this call's pre-hooks are fixed already; once the prediction is made, the
            # chain of leaf calls is needed again only to name functional activations
            chain = self._prediction is None or self.collector.functional_seen
            self.collector.attach(root_pre_hook=False, chain=chain)
            self._sampled_step = step
            if next(module.children(), None) is None:  # the model is a single leaf
                self.collector.pre_hook(args)

    def _after_forward(self, module: nn.Module, args, output) -> None:
        if not self._calls:  # a call that began before watch did
            return
        step, put_aside = self._calls.pop()
        if step:
            self.collector.end_batch()
        else:
            self.collector.open = put_aside

    def flush(self) -> None:
        """Turn an open sample into a record in :attr:`history` (done on the next forward;
        call it after the backward to get the record at once) and pass it to ``on_record``."""
        if self._sampled_step is None:
            return
        self.collector.fold_outputs()  # normally done already (end of forward / backward)
        self.collector.fold_grads()
        self.collector.detach()
        collection = self.collector.close()
        step, self._sampled_step = self._sampled_step, None
        if collection is not None:
            if self._prediction is None:
                self._prediction = predict(collection)
            record = assemble(self.collector, collection, step=step, prediction=self._prediction)
            self.history.records.append(record)
            for listener in self.on_record:
                listener(record)

    def plot(self, path: str | os.PathLike[str] = "watch.png") -> Path:
        """Write a PNG of the history: per-layer mean, std and % near zero over the steps,
        and each layer's histogram over time (x: step, y: value, colour: log count)."""
        # lazy: matplotlib, loaded only when a figure is asked for
        from initlab.report.watch_plots import write_watch_png

        self.flush()
        return write_watch_png(self.history, path)

    def page(self, path: str | os.PathLike[str] = "watch.html") -> Path:
        """Write a self-contained HTML page with the same figures and a per-layer table."""
        # lazy: matplotlib and jinja2, loaded only when a page is asked for
        from initlab.report.render import render_watch

        self.flush()
        return render_watch(self.history, path)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per (step, layer): see :meth:`WatchHistory.to_csv`."""
        self.flush()
        return self.history.to_csv(path)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """The whole history as JSON: see :meth:`WatchHistory.to_json`."""
        self.flush()
        return self.history.to_json(path)


@contextmanager
def watch(
    model: nn.Module,
    every: int = 1,
    *,
    bins: int = 30,
    ranges: Ranges = None,
    on_record: Callable[[ProbeRecord], object] | list | None = None,
) -> Iterator[Watch]:
    """Record probe statistics every ``every`` training steps of ``model``.

    A step is one call of ``model(...)`` in training mode with gradients enabled: forwards
    under ``model.eval()``, ``torch.no_grad()`` or ``inference_mode`` (evaluation) are not
    counted and not measured (``w.history.eval_skipped`` counts them). On a sampled step
    the forward hooks fold each layer's output into streaming statistics and the backward
    (if any) adds gradient stats: all layers together, at the end of the forward and of the
    backward (:mod:`initlab.probe.batched`). Each record's ``predicted_var`` is the mean-field
    prediction of the first sampled step (the init), computed once.
    ``on_record`` (a callable or a list of them) gets each :class:`ProbeRecord` as it is
    made, e.g. ``initlab.integrations.tensorboard.to_tensorboard(writer)``. The
    layer hooks exist only for a sampled step (attached by the model's own pre-hook, removed
    at the next forward), so other steps cost two Python calls, the model's own hooks.
    Hooks are removed on exit, even on error. Afterwards ``w.plot("watch.png")`` draws the
    per-layer curves and histograms over time, ``w.page("watch.html")`` a page of them,
    ``w.to_csv(path)`` / ``w.to_json(path)`` export the numbers.

    >>> model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    >>> with watch(model, every=2) as w:
    ...     for _ in range(4):
    ...         _ = model(torch.ones(3, 4))
    >>> w.history.steps
    [0, 2]
    """
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError(f"watch(every=...) must be a positive integer, got {every!r}.")
    collector = Collector(model, bins=bins, ranges=ranges)
    collector.deferred = True  # a sampled step's layers are folded together (probe.batched)
    listeners = on_record if isinstance(on_record, list) else [on_record] if on_record else []
    w = Watch(collector, every, listeners)
    handles = []
    try:
        handles.append(model.register_forward_pre_hook(w._on_forward, prepend=True))
        # always_call: an eval forward that raises still gives back the collection it hid
        handles.append(model.register_forward_hook(w._after_forward, always_call=True))
        yield w
        w.flush()
    finally:
        for handle in handles:
            handle.remove()
        collector.remove()
