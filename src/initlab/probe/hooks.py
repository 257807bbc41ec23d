"""Forward and gradient hooks that fold layer outputs into streaming statistics.

A :class:`Collector` hooks every "layer" of a model: each elementwise activation module
(``activations.from_module``, identity excluded) and each Linear / Conv output. While a
collection is open the hooks update :mod:`initlab.probe.stats` accumulators and then let
the tensors go; when it is closed they return at once. :func:`watch` uses one collector to
sample statistics every N forward passes during training, with its hooks attached only for
the sampled steps. Hooks are always removed, even
when the body raises.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from initlab.errors import ConfigError
from initlab.initializers.activations import Activation, from_module
from initlab.probe.record import assemble
from initlab.probe.stats import GradStats, Moments, OutputStats
from initlab.results.probe_records import WatchHistory

LINEAR_TYPES = (nn.Linear, nn.Bilinear)
CONV_TYPES = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)  # fmt: skip
Ranges = tuple[float, float] | dict[str, tuple[float, float]] | None


def layer_kind(module: nn.Module) -> tuple[str, Activation | None] | None:
    """("activation", act), ("linear", None), ("conv", None) or None for other modules."""
    act = from_module(module)
    if act is not None:
        return None if act.name == "identity" else ("activation", act)
    if isinstance(module, LINEAR_TYPES):
        return "linear", None
    if isinstance(module, CONV_TYPES):
        return "conv", None
    return None


@dataclass
class LayerSlot:
    """One hooked layer and what has been collected for it in the open collection."""

    name: str
    module: nn.Module
    kind: str
    activation: Activation | None
    out: OutputStats | None = None
    grad: GradStats | None = None


@dataclass
class LeafCall:
    """One leaf-module call of the first batch, for the variance prediction's chain."""

    name: str
    module: nn.Module
    chained: bool  # its input is exactly the previous leaf call's output tensor


@dataclass
class Collection:
    """What one open collection holds besides per-layer statistics."""

    order: list[str] = field(default_factory=list)  # layer names in first-call order
    calls: list[LeafCall] = field(default_factory=list)
    input_m2: Moments = field(default_factory=Moments)  # per-example E[x^2] into 1st leaf
    weight_grads: dict[str, GradStats] = field(default_factory=dict)
    record_calls: bool = True


class Collector:
    """Hooks on a model's layers; statistics flow only while a collection is open."""

    def __init__(self, model: nn.Module, *, bins: int = 30, ranges: Ranges = None) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"probe needs a torch.nn.Module, got {type(model).__name__}.")
        if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
            raise ConfigError(f"bins must be a positive integer, got {bins!r}.")
        self.model, self.bins, self.ranges = model, bins, ranges
        self.slots: dict[str, LayerSlot] = {}
        for name, module in model.named_modules():
            kind = layer_kind(module)
            if kind is not None:
                self.slots[name] = LayerSlot(name, module, kind[0], kind[1])
        if not self.slots:
            raise ConfigError(
                "The model has no elementwise activation, Linear or Conv module to probe; "
                "activations called as functions (F.relu) are not seen, use nn.ReLU() etc."
            )
        self.handles: list = []
        self.open: Collection | None = None
        self._last_out: weakref.ref | None = None

    # -- life cycle -------------------------------------------------------------------
    def attach(self, *, root_pre_hook: bool = True) -> None:
        """Register the hooks; ``root_pre_hook=False`` leaves out the model's own leaf
        pre-hook (a caller already inside the model's call runs it with :meth:`pre_hook`)."""
        for slot in self.slots.values():
            self.handles.append(slot.module.register_forward_hook(self._make_layer_hook(slot)))
            weight = getattr(slot.module, "weight", None)
            if isinstance(weight, nn.Parameter) and weight.requires_grad:
                hook = self._make_weight_hook(f"{slot.name}.weight" if slot.name else "weight")
                self.handles.append(weight.register_post_accumulate_grad_hook(hook))
        for name, module in self.model.named_modules():
            if next(module.children(), None) is None:  # leaves make the prediction's chain
                if module is self.model and not root_pre_hook:
                    continue
                self.handles.append(module.register_forward_pre_hook(self._make_pre_hook(name)))
                self.handles.append(module.register_forward_hook(self._leaf_post_hook))

    def detach(self) -> None:
        """Remove the hooks; an open collection stays open (and gets nothing more)."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def remove(self) -> None:
        self.detach()
        self.open = None

    def pre_hook(self, args) -> None:
        """The model's own leaf pre-hook, run by hand (the model is a single leaf module)."""
        self._make_pre_hook("")(self.model, args)

    def begin(self) -> None:
        """Open a fresh collection (previous statistics are dropped)."""
        self.open = Collection()
        self._last_out = None
        for slot in self.slots.values():
            slot.out, slot.grad = None, None

    def end_batch(self) -> None:
        """Only the first batch of a collection records the chain of leaf calls."""
        if self.open is not None:
            self.open.record_calls = False

    def close(self) -> Collection | None:
        done, self.open = self.open, None
        return done

    # -- hooks ------------------------------------------------------------------------
    def _range_for(self, slot: LayerSlot) -> tuple[float, float] | None:
        r = self.ranges
        if r is None:
            return None
        if isinstance(r, dict):
            for key in (slot.name, slot.activation.name if slot.activation else None, slot.kind):
                if key is not None and key in r:
                    return tuple(r[key])  # type: ignore[return-value]
            return None
        return tuple(r)  # type: ignore[return-value]

    def _make_layer_hook(self, slot: LayerSlot):
        def hook(module: nn.Module, args, output) -> None:
            c = self.open
            if c is None or not isinstance(output, torch.Tensor):
                return
            if slot.out is None:
                slot.out = OutputStats(slot.activation, self.bins, self._range_for(slot))
                slot.grad = GradStats()
                c.order.append(slot.name)
            slot.out.update(output)
            if output.requires_grad and torch.is_grad_enabled():
                grad = slot.grad
                output.register_hook(lambda g: grad.update(g))  # type: ignore[union-attr]

        return hook

    def _make_weight_hook(self, name: str):
        def hook(param: torch.Tensor) -> None:
            c = self.open
            if c is not None and param.grad is not None:
                c.weight_grads.setdefault(name, GradStats()).update(param.grad)

        return hook

    def _make_pre_hook(self, name: str):
        def hook(module: nn.Module, args) -> None:
            c = self.open
            if c is None or not c.record_calls or not args:
                return
            x = args[0]
            last = self._last_out() if self._last_out is not None else None
            chained = isinstance(x, torch.Tensor) and x is last
            if not c.calls and isinstance(x, torch.Tensor) and x.is_floating_point():
                rows = x.detach().float().reshape(x.shape[0] if x.dim() > 1 else 1, -1)
                c.input_m2.update(rows.pow(2).mean(dim=1))  # E[x^2] per example
            c.calls.append(LeafCall(name, module, chained))

        return hook

    def _leaf_post_hook(self, module: nn.Module, args, output) -> None:
        c = self.open
        if c is not None and c.record_calls and isinstance(output, torch.Tensor):
            self._last_out = weakref.ref(output)


class Watch:
    """Handle returned by :func:`watch`: sample counter and the plain history."""

    def __init__(self, collector: Collector, every: int) -> None:
        self.collector = collector
        self.every = every
        self.forwards = 0  # forward passes of the watched model so far
        self.history = WatchHistory(every=every)
        self._sampled_step: int | None = None

    def _on_forward(self, module: nn.Module, args) -> None:
        self.flush()  # the previous sampled step's backward has run by now
        step = self.forwards
        self.forwards += 1
        if step % self.every == 0:
            # the layer hooks live only for a sampled step: other steps run the model (and
            # its backward) with no hook but this one on the root
            self.collector.attach(root_pre_hook=False)  # this call's pre-hooks are fixed
            self.collector.begin()
            self._sampled_step = step
            if next(module.children(), None) is None:  # the model is a single leaf
                self.collector.pre_hook(args)

    def _after_forward(self, module: nn.Module, args, output) -> None:
        self.collector.end_batch()

    def flush(self) -> None:
        """Turn an open sample into a record in :attr:`history` (done on the next forward)."""
        if self._sampled_step is None:
            return
        self.collector.detach()
        collection = self.collector.close()
        step, self._sampled_step = self._sampled_step, None
        if collection is not None:
            self.history.records.append(assemble(self.collector, collection, step=step))


@contextmanager
def watch(
    model: nn.Module, every: int = 1, *, bins: int = 30, ranges: Ranges = None
) -> Iterator[Watch]:
    """Record probe statistics every ``every`` forward passes of ``model`` while training.

    A step is one call of ``model(...)``; on a sampled step the forward hooks fold each layer's
    output into streaming statistics and the backward (if any) adds gradient stats. The
    layer hooks exist only for a sampled step (attached by the model's own pre-hook, removed
    at the next forward), so other steps cost two Python calls, the model's own hooks.
    Hooks are removed on exit, even on error.

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
    w = Watch(collector, every)
    handles = []
    try:
        handles.append(model.register_forward_pre_hook(w._on_forward, prepend=True))
        handles.append(model.register_forward_hook(w._after_forward))
        yield w
        w.flush()
    finally:
        for handle in handles:
            handle.remove()
        collector.remove()
