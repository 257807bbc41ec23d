"""``probe(model, inputs)``: what an initialization does to every layer, in one call.

Forward (and backward, when a loss is given) over one or more batches with hooks that fold
each layer's output into streaming statistics: memory is O(layers x bins), never the
activations. The model is left as it was: gradients and buffers (e.g. BatchNorm running
stats) are restored, hooks removed, even when the forward raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from initlab.errors import ConfigError
from initlab.probe.hooks import Collector, Ranges
from initlab.probe.record import assemble
from initlab.probe.report import ProbeReport

Batch = tuple[Any, Any]  # (model input, target or None)


def _split(inputs: torch.Tensor, targets: torch.Tensor | None, batches: int) -> list[Batch]:
    if inputs.dim() == 0 or inputs.shape[0] < batches:
        raise ConfigError(
            f"Cannot split inputs of shape {tuple(inputs.shape)} into batches={batches}: "
            "give at least one example per batch along dim 0."
        )
    xs = torch.chunk(inputs, batches)
    if targets is None:
        return [(x, None) for x in xs]
    if not isinstance(targets, torch.Tensor) or targets.shape[0] != inputs.shape[0]:
        raise ConfigError(
            "targets must be a tensor with one row per input row "
            f"({inputs.shape[0]}), got {getattr(targets, 'shape', type(targets).__name__)}."
        )
    return list(zip(xs, torch.chunk(targets, batches), strict=True))


def _take(inputs: Iterable, batches: int) -> list[Batch]:
    out: list[Batch] = []
    for item in inputs:
        if len(out) == batches:
            break
        if isinstance(item, (tuple, list)) and len(item) == 2:
            out.append((item[0], item[1]))
        else:
            out.append((item, None))
    if not out:
        raise ConfigError("probe got an empty iterable of batches; give at least one batch.")
    return out


def _batches(inputs: Any, targets: Any, batches: int) -> list[Batch]:
    """One tensor split along dim 0, or the first ``batches`` items of an iterable
    (each a tensor or an ``(input, target)`` pair, as a DataLoader yields)."""
    if not isinstance(batches, int) or isinstance(batches, bool) or batches < 1:
        raise ConfigError(f"batches must be a positive integer, got {batches!r}.")
    if isinstance(inputs, torch.Tensor):
        return _split(inputs, targets, batches)
    if targets is not None:
        raise ConfigError(
            "targets= goes with a single input tensor; with an iterable of batches, "
            "yield (input, target) pairs instead."
        )
    if isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, dict)):
        return _take(inputs, batches)
    raise ConfigError(
        f"probe inputs must be a tensor or an iterable of batches, got {type(inputs).__name__}."
    )


def _size(x: Any) -> int:
    return int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() > 0 else 1


def probe(
    model: nn.Module,
    inputs: Any,
    *,
    targets: torch.Tensor | None = None,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    bins: int = 30,
    batches: int = 1,
    ranges: Ranges = None,
) -> ProbeReport:
    """Measure activations (and gradients, with ``loss_fn``) of every layer in call order.

    ``inputs`` is a tensor (split into ``batches`` chunks along dim 0) or an iterable of
    batches (tensors or ``(input, target)`` pairs; the first ``batches`` are used). With
    ``loss_fn`` each batch is also backpropagated: ``loss_fn(output, target)``, or
    ``loss_fn(output)`` when there is no target. ``ranges`` fixes histogram ranges: one
    ``(lo, hi)`` for all layers, or a dict keyed by layer name, activation name or kind
    ("linear", "conv", "activation"); otherwise bounded activations use their natural range
    and other layers a range fixed from the first batch.

    >>> model = nn.Sequential(nn.Linear(10, 10), nn.Sigmoid())
    >>> report = probe(model, torch.randn(64, 10, generator=torch.Generator().manual_seed(0)))
    >>> [x.name for x in report.layers], report.layer("1").histogram.lo
    (['0', '1'], 0.0)
    """
    if targets is not None and loss_fn is None:
        raise ConfigError("targets= needs loss_fn= too, e.g. loss_fn=torch.nn.functional.mse_loss.")
    plan = _batches(inputs, targets, batches)
    collector = Collector(model, bins=bins, ranges=ranges)
    params = [p for p in model.parameters() if p.requires_grad]
    saved_grads = [p.grad for p in params]
    saved_buffers = [(b, b.detach().clone()) for b in model.buffers()]
    losses: list[float] = []
    samples = 0
    try:
        collector.attach()
        collector.begin()
        for x, y in plan:
            args = x if isinstance(x, tuple) else (x,)
            if loss_fn is None:
                with torch.no_grad():
                    model(*args)
            else:
                for p in params:
                    p.grad = None
                out = model(*args)
                loss = loss_fn(out, y) if y is not None else loss_fn(out)
                loss.backward()
                losses.append(float(loss.detach()))
            collector.end_batch()
            samples += _size(args[0])
        collection = collector.close()
    finally:
        collector.remove()
        for p, g in zip(params, saved_grads, strict=True):
            p.grad = g
        with torch.no_grad():
            for b, saved in saved_buffers:
                b.copy_(saved)
    record = assemble(
        collector, collection, batches=len(plan), samples=samples,  # type: ignore[arg-type]
        loss=sum(losses) / len(losses) if losses else None,
    )  # fmt: skip
    return ProbeReport(record)
