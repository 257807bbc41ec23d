"""Residual blocks of models torch.fx cannot trace (Hugging Face transformers, data-dependent code).

Two ways, tried in order when ``fx.symbolic_trace`` fails:

1. One recorded forward pass, of ``example_input`` or else of the model's own
   ``dummy_inputs`` (every Hugging Face ``PreTrainedModel`` has them). A ``TorchFunctionMode``
   records each torch call and forward hooks record each leaf module call (weight layers,
   norms, torch.nn modules: the modules fx keeps whole), as an ``fx.Graph`` of the pass. The
   graph goes through the same analysis as a traced one, so a block is found exactly where fx
   would find it: an add of ``x`` and a value computed from ``x`` through a weight layer. Only
   data flow of floating-point values counts: sizes (``x.size(1)``) are Python ints,
   ``new_zeros``/``zeros_like`` read only a shape, and integer or bool results (ids, masks)
   start afresh, so none of them links tensors. The pass runs in eval mode under no_grad, with
   the mode and every buffer restored, and draws nothing from the global RNG.
2. The module structure of well-known Hugging Face layers, when no input is available or the
   pass fails: GPT-2-style blocks (``attn``, ``mlp``), Llama-style decoder layers
   (``self_attn``, ``mlp``) and BERT-style layers (``attention``; ``intermediate`` + ``output``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

import torch
from torch import fx, nn
from torch.overrides import TorchFunctionMode

from initlab.initializers.apply import NORM_LAYERS
from initlab.initializers.residual_blocks import (
    Discovery,
    FxBlocks,
    ResidualBlock,
    expand_layers,
    merge_layer_blocks,
)
from initlab.initializers.trace import is_weight_layer

# recorded names -> the fx targets the block analysis matches (``a + b`` records Tensor.add)
_TARGETS = {
    **dict.fromkeys(("add", "add_", "__add__", "__iadd__", "__radd__"), torch.add),
    **dict.fromkeys(("mul", "mul_", "__mul__", "__imul__", "__rmul__"), torch.mul),
    **dict.fromkeys(("sub", "sub_", "__sub__", "__isub__", "rsub", "__rsub__"), torch.sub),
    **dict.fromkeys(("div", "div_", "__truediv__", "__itruediv__", "true_divide"), torch.div),
}
_IN_PLACE = {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__setitem__"}
# calls whose tensor argument gives only a shape, dtype or device: no data flows from it
_SHAPE_ONLY = {
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "zeros_like", "ones_like",
    "empty_like", "full_like", "rand_like", "randn_like", "randint_like",
}  # fmt: skip
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# Hugging Face layers by the children they hold: one tuple of child names per branch, in forward
# order; a branch whose children are missing (no cross-attention) is left out
_HF_LAYERS = (
    (("attn",), ("crossattention",), ("mlp",)),  # GPT-2 family: x + attn(ln_1(x)), x + mlp(..)
    (("self_attn",), ("cross_attn",), ("mlp",)),  # Llama, Mistral, Qwen: pre-norm, as GPT-2
    (("attention",), ("crossattention",), ("intermediate", "output")),  # BERT: post-norm
)


def _constant(*_):
    """Stands in for a tensor the pass did not compute (a buffer, a shape-only call)."""


def _is_leaf(module: nn.Module) -> bool:
    """Modules recorded whole, as fx keeps them: torch.nn modules, weight layers and norms
    (a Hugging Face RMSNorm's ``weight * x`` would otherwise read as a branch gate)."""
    if is_weight_layer(module) or isinstance(module, NORM_LAYERS):
        return True
    cls = type(module)
    if cls.__module__.startswith("transformers") and cls.__name__.endswith(
        ("LayerNorm", "RMSNorm")
    ):
        return True
    return cls.__module__.startswith("torch.nn") and not isinstance(module, _CONTAINERS)


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


class _Recorder(TorchFunctionMode):
    """Builds an fx.Graph of one forward pass: torch calls outside leaf modules, leaf calls."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.graph = fx.Graph()
        self.nodes: dict[int, fx.Node] = {}  # id(tensor) -> the node that last wrote it
        self.keep: list[torch.Tensor] = []  # holds every tensor seen, so no id is reused
        self.names = {id(p): n for n, p in model.named_parameters()}
        self.names.update({id(b): n for n, b in model.named_buffers()})
        self.depth = 0  # > 0 inside a leaf module: its inner calls are not recorded
        self.pending: list[tuple] = []

    def bind(self, value, node: fx.Node) -> None:
        for t in _tensors(value):
            self.nodes[id(t)] = node
            self.keep.append(t)

    def node_of(self, t: torch.Tensor) -> fx.Node:
        node = self.nodes.get(id(t))
        if node is None:  # a parameter, a buffer, or a tensor made outside the recorded calls
            name = self.names.get(id(t))
            node = (self.graph.create_node("get_attr", name, name=name.replace(".", "_"))
                    if name else self.graph.call_function(_constant))  # fmt: skip
            self.bind(t, node)
        return node

    def arg(self, value):
        """A call's argument with tensors replaced by their nodes (other objects by None)."""
        if isinstance(value, torch.Tensor):
            return self.node_of(value)
        if isinstance(value, (list, tuple)):
            items = [self.arg(v) for v in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, Mapping):
            return {str(k): self.arg(v) for k, v in value.items()}
        return value if isinstance(value, (int, float, bool, str, type(None))) else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        in_place = name in _IN_PLACE or (name.endswith("_") and not name.startswith("_"))
        written = _tensors(out) or (_tensors(args[:1]) if in_place else [])  # __setitem__: None
        if self.depth or not written:
            return out  # inside a leaf, or a size / bool / item: no tensor data flows on
        if name in _SHAPE_ONLY or not any(t.is_floating_point() for t in written):
            # no signal flows through shape-only calls or integer/bool tensors (indices,
            # masks): BERT's token-type and position ids both read the position_ids buffer,
            # which must not make their two embeddings a fork with a "shortcut"
            node = self.graph.call_function(_constant)
        else:
            node = self.graph.call_function(_TARGETS.get(name, func), self.arg(args),
                                            self.arg(kwargs))  # fmt: skip
        if in_place and args and isinstance(args[0], torch.Tensor):
            self.bind(args[0], node)  # later readers of the tensor see the written value
        self.bind(out, node)
        return out

    def pre_hook(self, name: str):
        def hook(module, args, kwargs):
            if not self.depth:
                self.pending.append((name, self.arg(args), self.arg(kwargs)))
            self.depth += 1

        return hook

    def post_hook(self, module, args, kwargs, out):
        self.depth -= 1
        if not self.depth:
            name, node_args, node_kwargs = self.pending.pop()
            self.bind(out, self.graph.call_module(name, node_args, node_kwargs))


def _input_of(model: nn.Module, example_input):
    """(the input to record, what it is), or (None, why not)."""
    if example_input is not None:
        return example_input, "example_input"
    try:
        dummy = getattr(model, "dummy_inputs", None)  # a property: may raise on odd configs
    except Exception:
        dummy = None
    if isinstance(dummy, Mapping) and dummy and all(_tensors(v) for v in dummy.values()):
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        return {k: v.to(device) for k, v in dummy.items()}, "the model's dummy_inputs"
    return None, "no example_input given and the model has no dummy_inputs"


def record_graph(model: nn.Module, example_input) -> fx.Graph:
    """The fx.Graph of one forward pass of ``example_input`` (a tensor, a tuple of positional
    arguments, or a dict of keyword arguments), with the model left as it was."""
    recorder = _Recorder(model)
    if isinstance(example_input, Mapping):
        args, kwargs = (), dict(example_input)
    else:
        args = example_input if isinstance(example_input, tuple) else (example_input,)
        kwargs = {}
    for i, t in enumerate(_tensors([args, kwargs])):
        recorder.bind(t, recorder.graph.placeholder(f"input_{i}"))
    handles = []
    for name, module in model.named_modules():
        if name and _is_leaf(module):
            handles.append(module.register_forward_pre_hook(recorder.pre_hook(name),
                                                            with_kwargs=True))  # fmt: skip
            handles.append(module.register_forward_hook(recorder.post_hook, with_kwargs=True))
    try:
        with restored_state(model), torch.no_grad(), recorder:
            model.eval()  # dropout would draw from the global RNG, batch norm update its stats
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return recorder.graph


@contextmanager
def restored_state(model: nn.Module) -> Iterator[None]:
    """Put every module's training flag and every buffer (BatchNorm running statistics) back
    afterwards, so that a measuring forward pass does not change the model."""
    flags = {m: m.training for m in model.modules()}
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        for m, flag in flags.items():
            m.training = flag
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)


def structure_blocks(model: nn.Module) -> tuple[list[ResidualBlock], list[str]]:
    """Blocks of Hugging Face layers known by their children (see ``_HF_LAYERS``), and the
    layer classes matched. The weight layers of a branch are its children's, as declared."""
    modules = dict(model.named_modules())
    blocks: list[ResidualBlock] = []
    kinds: list[str] = []
    for name, module in model.named_modules():
        if not name or not type(module).__module__.startswith("transformers"):
            continue
        children = dict(module.named_children())
        for pattern in _HF_LAYERS:
            if not all(c in children for c in pattern[0] + pattern[-1]):
                continue
            for branch in pattern:
                if not all(c in children for c in branch):
                    continue
                layers = [f"{name}.{c}.{n}".rstrip(".") for c in branch
                          for n, m in children[c].named_modules() if is_weight_layer(m)]  # fmt: skip
                if layers:
                    blocks.append(ResidualBlock(f"{name}:{branch[-1]}",
                                                expand_layers(layers, modules), found_by="structure"))  # fmt: skip
            kinds.append(type(module).__name__)
            break
    return blocks, list(dict.fromkeys(kinds))


def untraced_blocks(
    model: nn.Module, example_input, why: str, layer_blocks: list[ResidualBlock],
    declared: list[str],
) -> Discovery:  # fmt: skip
    """Blocks of a model fx could not trace (``why``): recorded, else by HF structure, else
    PyTorch's transformer layers alone. ``Discovery.method`` says which and why."""
    notes: list[str] = []
    value, source = _input_of(model, example_input)
    if value is not None:
        try:
            graph = record_graph(model, value)
        except Exception as error:  # the model's own errors: any kind
            source = f"running {source} failed ({type(error).__name__}: {str(error)[:80]})"
        else:
            found = FxBlocks(model, graph)
            recorded, notes = found.blocks()
            recorded = [replace(b, found_by="recorded", add_node="", skip_node="")
                        for b in recorded]  # fmt: skip
            if recorded:
                blocks = merge_layer_blocks(recorded, layer_blocks)
                also = " and PyTorch's transformer layers" if len(blocks) > len(recorded) else ""
                method = f"found by recording one forward pass of {source}{also} ({why})"
                return Discovery(blocks, method, found.order(), None, tuple(notes), True)
            source = f"a forward pass of {source} showed none"
    hf, kinds = structure_blocks(model)
    if hf:
        blocks = merge_layer_blocks(hf, layer_blocks)
        method = f"found from the module structure of {', '.join(kinds)} ({why}; {source})"
        return Discovery(blocks, method, declared, None, tuple(notes))
    hint = "; pass example_input= or name the branches with branches='glob|glob'"
    return Discovery(layer_blocks, f"{why}; {source}{hint}", declared, None, tuple(notes))
