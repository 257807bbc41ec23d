"""Which activation follows each weight layer in the real forward pass.

Three ways, tried in order:

1. ``torch.fx`` symbolic tracing: walk from each weight layer's node through shape and
   normalization ops (view, flatten, dropout, batch norm, pooling, adds) to the first
   elementwise activation, be it an ``nn.Module`` or a functional call such as ``F.gelu``
   inside a custom module.
2. When the model cannot be traced (data-dependent control flow), run ``example_input``
   through it, recording weight-layer calls with forward hooks and activation calls with a
   ``TorchFunctionMode``; the activation recorded after a layer and before the next one wins.
   A Hugging Face model needs no ``example_input``: its own ``dummy_inputs`` are used.
   Activation modules (``nn.GELU``, HF's ``NewGELUActivation``) count as one activation, not
   as the tanh or erf they compute inside, and calls inside weight layers are not recorded.
3. Otherwise the declaration order of modules: the next activation module declared after
   each weight layer, corrected by :mod:`initlab.initializers.structure` where module
   structure says more (PyTorch's transformer layers, MLPs holding their activation as an
   attribute, gated MLPs). The report says which method was used.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from initlab.activations import FUNCTIONS, Activation, from_module
from initlab.initializers.fans import is_hf_conv1d
from initlab.initializers.structure import structural_activations

WEIGHT_LAYERS = (
    nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
    nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Embedding, nn.EmbeddingBag, nn.RNNBase,
    nn.RNNCellBase, nn.MultiheadAttention,
)  # fmt: skip
_PASS_MODULES = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity,
    nn.Flatten, nn.Unflatten, nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
)  # fmt: skip
_PASS_FUNCTIONS = {
    operator.add, operator.iadd, operator.getitem, torch.add, torch.flatten, torch.reshape,
    torch.cat, torch.squeeze, torch.unsqueeze, torch.transpose, torch.permute, F.dropout,
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.batch_norm, F.layer_norm, F.group_norm,
}  # fmt: skip
_PASS_METHODS = {
    "view", "reshape", "flatten", "permute", "transpose", "contiguous", "squeeze", "unsqueeze",
    "add", "add_", "__add__", "float", "to", "clone", "unflatten", "view_as", "reshape_as",
}  # fmt: skip
# (option name, positional index) for functional activations that take options
_FUNC_OPTIONS = {
    "leaky_relu": (("negative_slope", 1),),
    "elu": (("alpha", 1),),
    "celu": (("alpha", 1),),
    "softplus": (("beta", 1), ("threshold", 2)),
    "gelu": (("approximate", 99),),
}
_DEFAULTS = {"negative_slope": 0.01, "alpha": 1.0, "beta": 1.0, "threshold": 20.0,
             "approximate": "none"}  # fmt: skip


@dataclass(frozen=True)
class Found:
    """The activation after one weight layer and how it was found."""

    activation: Activation | None  # None: no activation follows (identity)
    method: str  # "fx" | "example_input" | "declaration order" | "explicit"


def is_weight_layer(module: nn.Module) -> bool:
    """A layer whose weight initlab fills by fans: torch's layers above and HF's Conv1D."""
    return isinstance(module, WEIGHT_LAYERS) or is_hf_conv1d(module)


def _activation_from_call(target, args, kwargs) -> Activation | None:
    name = FUNCTIONS.get(target)
    if name is None:
        return None
    options = {}
    for key, index in _FUNC_OPTIONS.get(name, ()):
        value = kwargs.get(key, args[index] if len(args) > index else _DEFAULTS[key])
        if isinstance(value, (int, float, str)) and value != _DEFAULTS[key]:
            options[key] = float(value) if isinstance(value, int) else value
    return Activation(name, options)


def activation_from_call(func, args, kwargs) -> Activation | None:
    """The activation a torch call computes (``F.relu``, ``torch.tanh``, ``Tensor.sigmoid``
    with its options), or None.

    >>> activation_from_call(torch.nn.functional.leaky_relu, (torch.ones(1), 0.2), {}).spec
    'leaky_relu:negative_slope=0.2'
    """
    act = _activation_from_call(func, args, kwargs)
    if act is None and getattr(func, "__name__", None) in ("relu", "tanh", "sigmoid"):
        act = _activation_from_call(func.__name__, args, kwargs)  # Tensor methods
    return act


def by_fx(model: nn.Module) -> dict[str, Found]:
    """Trace with torch.fx; raises whatever fx raises when the model is not traceable."""
    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    found: dict[str, Found] = {}
    for node in graph.nodes:
        if node.op == "call_module" and is_weight_layer(modules[node.target]):
            found[node.target] = Found(_follow(node, modules), "fx")
    return found


def _follow(start: torch.fx.Node, modules: dict[str, nn.Module]) -> Activation | None:
    frontier = list(start.users)
    seen = set()
    while frontier:
        node = frontier.pop(0)
        if node in seen:
            continue
        seen.add(node)
        if node.op == "call_module":
            mod = modules[node.target]
            act = from_module(mod)
            if act is not None and act.name != "identity":  # nn.Identity is a placeholder
                return act
            if is_weight_layer(mod) or not isinstance(mod, _PASS_MODULES):
                continue
        elif node.op in ("call_function", "call_method"):
            act = _activation_from_call(node.target, node.args, node.kwargs)
            if act is not None:
                return act
            passes = _PASS_FUNCTIONS if node.op == "call_function" else _PASS_METHODS
            if node.target not in passes:
                continue
        else:
            continue
        frontier.extend(node.users)
    return None


class _Recorder(TorchFunctionMode):
    """Records functional activations, except inside modules whose call is recorded whole
    (activation modules and weight layers: ``depth`` > 0)."""

    def __init__(self, events: list) -> None:
        super().__init__()
        self.events = events
        self.depth = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.depth == 0:
            act = activation_from_call(func, args, kwargs)
            if act is not None:
                self.events.append(("act", act))
        return func(*args, **kwargs)


def run_example(model: nn.Module, example_input) -> None:
    """Call ``model`` on a tensor, a tuple of positional inputs or a dict of keyword inputs."""
    if isinstance(example_input, dict):
        model(**example_input)
    elif isinstance(example_input, tuple):
        model(*example_input)
    else:
        model(example_input)


def by_example_input(model: nn.Module, example_input) -> dict[str, Found]:
    """Run the model once (a tensor, a tuple of positional inputs or a dict of keyword
    inputs), recording weight-layer calls and activation calls in order."""
    events: list = []
    handles = []
    recorder = _Recorder(events)

    def enter(event):
        def pre(module, args):
            if recorder.depth == 0:
                events.append(event)
            recorder.depth += 1

        return pre

    def leave(module, args, output):
        recorder.depth -= 1

    for name, module in model.named_modules():
        act = from_module(module)
        if is_weight_layer(module):
            event = ("layer", name)
        elif act is not None and act.name != "identity":
            event = ("act", act)
        else:
            continue
        handles.append(module.register_forward_pre_hook(enter(event)))
        handles.append(module.register_forward_hook(leave, always_call=True))
    try:
        with torch.no_grad(), recorder:
            run_example(model, example_input)
    finally:
        for h in handles:
            h.remove()
    found: dict[str, Found] = {}
    pending: list[str] = []
    for kind, value in events:
        if kind == "layer":
            for name in pending:
                found.setdefault(name, Found(None, "example_input"))
            pending = [value]
        else:
            for name in pending:
                found.setdefault(name, Found(value, "example_input"))
            pending = []
    for name in pending:
        found.setdefault(name, Found(None, "example_input"))
    return found


def by_declaration(model: nn.Module) -> dict[str, Found]:
    """The next activation module declared after each weight layer (a last resort)."""
    found: dict[str, Found] = {}
    pending: list[str] = []
    for name, module in model.named_modules():
        if is_weight_layer(module):
            for p in pending:
                found[p] = Found(None, "declaration order")
            pending = [name]
            continue
        act = from_module(module)
        if act is not None and act.name != "identity":
            for p in pending:
                found[p] = Found(act, "declaration order")
            pending = []
    for p in pending:
        found[p] = Found(None, "declaration order")
    return found


def by_structure(model: nn.Module) -> dict[str, Found]:
    """Declaration order, corrected where module structure says which activation follows."""
    found = by_declaration(model)
    for name, act in structural_activations(model).items():
        if name in found:
            found[name] = Found(act, "module structure")
    return found


def find_activations(model: nn.Module, example_input=None) -> tuple[dict[str, Found], str]:
    """Map weight-layer names to the activation that follows; also a note on the method."""
    try:
        return by_fx(model), "activations found by torch.fx tracing"
    except Exception as fx_error:  # fx raises many kinds of errors on untraceable code
        reason = f"{type(fx_error).__name__}"
    source = "example_input"
    if example_input is None and isinstance(getattr(model, "dummy_inputs", None), dict):
        example_input, source = model.dummy_inputs, "the model's own dummy_inputs (Hugging Face)"
    if example_input is not None:
        return by_example_input(model, example_input), (
            f"torch.fx could not trace the model ({reason}); activations recorded by running "
            f"{source}"
        )
    return by_structure(model), (
        f"torch.fx could not trace the model ({reason}) and no example_input was given; "
        "activations from module structure and declaration order (pass example_input= or "
        "nonlinearity= to be sure)"
    )
