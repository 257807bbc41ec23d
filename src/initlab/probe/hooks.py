"""Forward and gradient hooks that fold layer outputs into streaming statistics.

A :class:`Collector` hooks every "layer" of a model: each elementwise activation module
(``activations.from_module``, identity excluded), each Linear / Conv output (Hugging Face's
``Conv1D`` counts as a Linear), and each *block*: a module held in an ``nn.ModuleList`` (a
GPT2Block, LlamaDecoderLayer, BertLayer, TransformerEncoderLayer...), whose output is the
residual stream; a block returning a tuple is measured on its first tensor. While a
collection is open the hooks update :mod:`initlab.probe.stats` accumulators and then let
the tensors go; when it is closed they return at once. :func:`watch` uses one collector to
sample statistics every N training steps (evaluation forwards do not count), with its hooks
attached only for the sampled steps. Hooks are always removed, even when the body raises.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
from torch import nn

from initlab.activations import Activation, from_module
from initlab.errors import ConfigError
from initlab.initializers.fans import is_hf_conv1d
from initlab.probe.batched import fold_grads, fold_outputs
from initlab.probe.functional import FunctionalActivations
from initlab.probe.stats import GradStats, Moments, OutputStats

LINEAR_TYPES = (nn.Linear, nn.Bilinear)
CONV_TYPES = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)  # fmt: skip
CONTAINER_TYPES = (nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict)
NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
WEIGHT_KINDS = ("linear", "conv")
Ranges = tuple[float, float] | dict[str, tuple[float, float]] | None
Kind = tuple[str, Activation | None]
PENDING_LIMIT = 1 << 22  # deferred mode: fold once this many output values are held


def layer_kind(module: nn.Module, *, in_list: bool = False) -> Kind | None:
    """("activation", act), ("linear", None), ("conv", None), ("norm", None), ("rnn", None),
    ("embedding", None), ("block", None) or None.

    ``in_list``: the module is an item of an ``nn.ModuleList``; one with children of its own
    (not a bare container) is a block, the repeated unit of a deep model.

    >>> layer_kind(nn.Tanh())[0], layer_kind(nn.Linear(2, 2)), layer_kind(nn.LayerNorm(2))
    ('activation', ('linear', None), ('norm', None))
    >>> layer_kind(nn.Dropout()) is None
    True
    >>> layer_kind(nn.TransformerEncoderLayer(8, 2), in_list=True)
    ('block', None)
    """
    act = from_module(module)
    if act is not None:
        return None if act.name == "identity" else ("activation", act)
    if isinstance(module, LINEAR_TYPES) or is_hf_conv1d(module):
        return "linear", None
    if isinstance(module, CONV_TYPES):
        return "conv", None
    if isinstance(module, NORM_TYPES):  # what the next layer really sees after BatchNorm
        return "norm", None
    if isinstance(module, (nn.RNNBase, nn.Embedding, nn.EmbeddingBag)):
        # a recurrent layer's output sequence, an embedding's vectors: layers of their own
        return ("rnn" if isinstance(module, nn.RNNBase) else "embedding"), None
    if in_list and not isinstance(module, CONTAINER_TYPES) and next(module.children(), None):
        return "block", None
    return None


def first_tensor(output) -> torch.Tensor | None:
    """The tensor a layer returned, or the first tensor of a tuple / list / dict (an HF block
    may return ``(hidden_states, attention_weights, ...)``); None when there is none.

    >>> first_tensor((None, torch.ones(2))).tolist()
    [1.0, 1.0]
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):  # HF's ModelOutput is an OrderedDict
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return next((x for x in output if isinstance(x, torch.Tensor)), None)
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
        listed = {id(m) for lst in model.modules() if isinstance(lst, nn.ModuleList) for m in lst}
        for name, module in model.named_modules():
            kind = layer_kind(module, in_list=id(module) in listed)
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
        self.functional = FunctionalActivations(self)
        self._last_leaf = "input"  # the leaf module that ran last: names functional calls
        self.functional_seen = False  # some activation was called as a function
        # deferred (watch's sampled steps): outputs are folded together at the end of the
        # forward, gradients at the end of the backward (probe.batched), not one by one
        self.deferred = False
        self._outputs: list[tuple[OutputStats, torch.Tensor]] = []
        self._held = 0
        self._grads: list[tuple[GradStats, torch.Tensor]] = []
        self._grads_queued = False

    # -- life cycle -------------------------------------------------------------------
    def attach(self, *, root_pre_hook: bool = True, chain: bool = True) -> None:
        """Register the hooks; ``root_pre_hook=False`` leaves out the model's own leaf
        pre-hook (a caller already inside the model's call runs it with :meth:`pre_hook`).

        ``chain=False`` registers only the layer and weight hooks: no chain of leaf calls
        (the mean-field prediction's input) and no watch for functional activations, for a
        caller that has its prediction already and saw no functional activation."""
        for slot in self.slots.values():
            self.handles.append(slot.module.register_forward_hook(self._make_layer_hook(slot)))
            weight = getattr(slot.module, "weight", None) if slot.kind in WEIGHT_KINDS else None
            if isinstance(weight, nn.Parameter) and weight.requires_grad:
                hook = self._make_weight_hook(f"{slot.name}.weight" if slot.name else "weight")
                self.handles.append(weight.register_post_accumulate_grad_hook(hook))
            if chain and slot.kind == "activation":  # its own F.relu is not a functional call
                self.handles += [
                    slot.module.register_forward_pre_hook(self._enter_activation),
                    slot.module.register_forward_hook(self._leave_activation, always_call=True),
                ]
        if not chain:
            return
        for name, module in self.model.named_modules():
            if next(module.children(), None) is None:  # leaves make the prediction's chain
                if module is self.model and not root_pre_hook:
                    continue
                self.handles.append(module.register_forward_pre_hook(self._make_pre_hook(name)))
                self.handles.append(module.register_forward_hook(self._make_leaf_post_hook(name)))
        # functional activations are seen only while the model's forward runs
        self.handles.append(self.model.register_forward_hook(self._stop_functional,
                                                             always_call=True))  # fmt: skip
        if root_pre_hook:
            self.handles.append(self.model.register_forward_pre_hook(self._start_functional))
        else:  # the caller is inside the model's call already
            self._start_functional(self.model, ())

    def detach(self) -> None:
        """Remove the hooks; an open collection stays open (and gets nothing more)."""
        self.functional.stop()
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def remove(self) -> None:
        """Remove the hooks and drop the open collection, if any (and what it held back)."""
        self.detach()
        self.open = None
        self._outputs, self._held, self._grads = [], 0, []

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
        """Only the first batch of a collection records the chain of leaf calls; deferred
        outputs are folded now."""
        self.fold_outputs()
        if self.open is not None:
            self.open.record_calls = False

    def fold_outputs(self) -> None:
        """Fold the outputs held in deferred mode into their statistics."""
        held, self._outputs, self._held = self._outputs, [], 0
        fold_outputs(held)

    def fold_grads(self) -> None:
        """Fold the gradients held in deferred mode (run at the end of the backward)."""
        held, self._grads, self._grads_queued = self._grads, [], False
        fold_grads(held)

    def _grad(self, stats: GradStats, g: torch.Tensor) -> None:
        if not self.deferred:
            stats.update(g)
            return
        self._grads.append((stats, g))
        if not self._grads_queued:  # once per backward: fold when the whole pass is done
            torch.autograd.Variable._execution_engine.queue_callback(self.fold_grads)
            self._grads_queued = True

    def close(self) -> Collection | None:
        """End the open collection and return it (None when none is open)."""
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
            if c is None:
                return
            output = first_tensor(output)
            # a nested tensor (TransformerEncoder's fast path with a padding mask) has no
            # plain reshape: it is skipped rather than measured wrongly
            if output is None or not output.is_floating_point() or output.is_nested:
                return
            if slot.out is None:
                slot.out = OutputStats(slot.activation, self.bins, self._range_for(slot))
                slot.grad = GradStats()
                c.order.append(slot.name)
            if self.deferred:  # a copy: an in-place op later in the forward may change it
                self._outputs.append((slot.out, output.detach().clone()))
                self._held += output.numel()
                if self._held >= PENDING_LIMIT:
                    self.fold_outputs()
            else:
                slot.out.update(output)
            if output.requires_grad and torch.is_grad_enabled():
                grad = slot.grad
                output.register_hook(lambda g: self._grad(grad, g))  # type: ignore[arg-type]

        return hook

    def _make_weight_hook(self, name: str):
        def hook(param: torch.Tensor) -> None:
            c = self.open
            if c is not None and param.grad is not None:
                self._grad(c.weight_grads.setdefault(name, GradStats()), param.grad)

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

    def _make_leaf_post_hook(self, name: str):
        def hook(module: nn.Module, args, output) -> None:
            self._last_leaf = name or "model"
            c = self.open
            if c is not None and c.record_calls and isinstance(output, torch.Tensor):
                self._last_out = weakref.ref(output)

        return hook

    # -- functional activations ---------------------------------------------------------
    def _start_functional(self, module, args) -> None:
        if self.open is not None:
            self._last_leaf = "input"
            self.functional.start()

    def _stop_functional(self, module, args, output) -> None:
        self.functional.stop()

    def _enter_activation(self, module, args) -> None:
        self.functional.inside_modules += 1

    def _leave_activation(self, module, args, output) -> None:
        self.functional.inside_modules -= 1

    def record_functional(self, act: Activation, output: torch.Tensor) -> None:
        """Measure the output of an activation called as a function, as a layer named after
        the leaf module it follows (``fc1.relu``)."""
        if self.open is None:
            return
        name = f"{self._last_leaf}.{act.name}"
        self.functional_seen = True
        slot = self.slots.get(name)
        if slot is None:
            slot = self.slots[name] = LayerSlot(name, act.module(), "activation", act)
        self._make_layer_hook(slot)(slot.module, (), output)
