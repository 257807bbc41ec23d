"""How the residual stream's variance grows block by block at init.

``variance_growth(model, x)`` runs one forward pass and records, for every residual block
(see :mod:`initlab.initializers.residual_blocks`), the variance of the block's output (the
sum ``x + f(x)``) relative to the variance of the stream entering the first block. Plain He
on a residual MLP multiplies it by about 3 per block (each branch adds twice the stream's
variance); Fixup and zero-gamma start every branch at zero, so the ratio stays 1.

>>> from torch import nn
>>> class Block(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = nn.Linear(64, 64)
...     def forward(self, x):
...         return x + self.fc(x)
>>> model = nn.Sequential(Block(), Block())
>>> torch.nn.init.zeros_(model[1].fc.weight); torch.nn.init.zeros_(model[1].fc.bias)  # doctest: +ELLIPSIS
Parameter...
>>> growth = variance_growth(model, torch.randn(256, 64, generator=torch.Generator().manual_seed(0)))
>>> growth.blocks, growth.ratios[1] == growth.ratios[0]
(['0', '1'], True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import fx, nn

from initlab.errors import InitSpecError
from initlab.initializers.residual_blocks import Discovery
from initlab.initializers.residual_find import find_blocks
from initlab.initializers.residual_record import restored_state


@dataclass
class VarianceGrowth:
    """Variance of the residual stream after each block, and of the stream entering them."""

    input_var: float
    blocks: list[str] = field(default_factory=list)  # measurement points in forward order
    block_vars: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """Each block output's variance over the input variance."""
        return [v / self.input_var if self.input_var > 0 else float("inf") for v in self.block_vars]

    @property
    def growth(self) -> float:
        """Last block output's variance over the input variance."""
        return self.ratios[-1]

    def to_dict(self) -> dict:
        """Plain data, with the growth."""
        return {"input_var": self.input_var, "blocks": list(self.blocks),
                "block_vars": list(self.block_vars), "growth": self.growth}  # fmt: skip


def _var(value) -> float | None:
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() > 1:
        return float(value.detach().double().var())
    return None


class _Recorder(fx.Interpreter):
    """Runs the traced graph, keeping the variance of the chosen nodes as they are computed."""

    def __init__(self, gm: fx.GraphModule, wanted: dict[str, str], points: list) -> None:
        super().__init__(gm)
        self.wanted = wanted  # node name -> measurement label
        self.points = points

    def run_node(self, n: fx.Node):
        out = super().run_node(n)
        if n.name in self.wanted:
            self.points.append((self.wanted[n.name], _var(out)))
        return out


def _hooks(model: nn.Module, found: Discovery, points: list) -> list:
    """Forward hooks for blocks fx does not see: the named module's input and output."""
    modules = dict(model.named_modules())
    handles = []
    seen = set()
    for block in found.blocks:
        if block.found_by == "fx":
            continue
        owner = block.name.split(":")[0]  # a torch layer "layers.0:self_attn" -> "layers.0"
        if owner in seen:
            continue
        seen.add(owner)
        summed = block.found_by == "rule"  # a rule names the branch: the block output is x + f(x)

        def hook(m, args, out, owner=owner, summed=summed):
            x = args[0] if args else None
            y = out[0] if isinstance(out, tuple) else out
            points.append((f"{owner}:input", _var(x)))
            points.append((owner, _var(x + y if summed else y)))

        handles.append(modules[owner].register_forward_hook(hook))
    return handles


def variance_growth(
    model: nn.Module, x, *, branches: str = "", train: bool | None = None
) -> VarianceGrowth:
    """Forward ``x`` once (no grad) and measure the residual stream's variance per block.

    ``branches`` names the branches as in the residual schemes. ``train`` sets the model's mode
    for the pass (``None``: as it is); the mode and every buffer (BatchNorm running statistics)
    are restored afterwards, so measuring does not change the model.
    """
    found = find_blocks(model, branches)
    if not found.blocks:
        raise InitSpecError(
            f"variance_growth found no residual blocks in {type(model).__name__} "
            f"({found.method}); name them with branches='glob|glob'."
        )
    points: list[tuple[str, float | None]] = []
    wanted = {}
    for block in found.blocks:
        if block.found_by == "fx":
            wanted.setdefault(block.skip_node, f"{block.name}:input")
            wanted[block.add_node] = block.name
    handles = _hooks(model, found, points)
    inputs = x if isinstance(x, tuple) else (x,)
    try:
        with restored_state(model), torch.no_grad():
            if train is not None:
                model.train(train)
            if wanted:
                _Recorder(found.graph_module, wanted, points).run(*inputs)
            else:
                model(*inputs)
    finally:
        for h in handles:
            h.remove()
    inputs_seen = [v for label, v in points if label.endswith(":input") and v is not None]
    outputs = [(label, v) for label, v in points if not label.endswith(":input") and v is not None]
    if not inputs_seen or not outputs:
        raise InitSpecError(
            f"variance_growth saw no residual block run on an input of shape "
            f"{tuple(getattr(x, 'shape', ()))}; check that x is a batch the model accepts."
        )
    return VarianceGrowth(
        input_var=inputs_seen[0],
        blocks=[label for label, _ in outputs],
        block_vars=[v for _, v in outputs],
    )
