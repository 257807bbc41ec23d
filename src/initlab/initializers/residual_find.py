"""Which residual blocks a model has: the one dispatch over the ways to find them.

Found four ways:

1. ``torch.fx``: every add whose operands are ``x`` and a value computed from ``x`` through
   at least one weight layer (identity shortcut), or two values computed from one fork ``x``
   (projection shortcut: the side with more weight layers is the branch). Shape queries
   (``x.size()``, ``x.shape``) are not data flow, so ``tok(idx) + pos(arange(idx.size(1)))``
   is not a block. An add whose branch contains another block's add (a stage around blocks)
   is left out, so each weight layer belongs to the innermost block only.
2. PyTorch's transformer layers, which fx keeps as leaves: ``TransformerEncoderLayer`` has a
   self-attention and a feed-forward branch, ``TransformerDecoderLayer`` also a cross-attention.
3. A user rule ``branches="glob|glob"``: each module whose name matches is one branch (its
   output is added onto its input); this replaces 1 and 2. Inside such a module, scalar
   parameters whose name contains "bias" are biases, the others multipliers, and the gate is
   the multiplier named like ``gate``/``alpha`` (or the only multiplier).
4. When fx cannot trace the model (Hugging Face transformers): one recorded forward pass of
   ``example_input`` or the model's ``dummy_inputs``, analysed as in 1, else the structure of
   well-known Hugging Face layers (:mod:`initlab.initializers.residual_record`).

>>> import torch
>>> class Block(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)
...         self.gate = nn.Parameter(torch.zeros(()))
...     def forward(self, x):
...         return x + self.gate * self.fc2(torch.relu(self.fc1(x)))
>>> [(b.name, b.layers, b.gate) for b in find_blocks(nn.Sequential(Block(), Block())).blocks]
[('0', ('0.fc1', '0.fc2'), '0.gate'), ('1', ('1.fc1', '1.fc2'), '1.gate')]
"""

from __future__ import annotations

from torch import fx, nn

from initlab.initializers.residual_blocks import (
    Discovery,
    FxBlocks,
    expand_layers,
    merge_layer_blocks,
    rule_blocks,
    torch_layer_blocks,
)
from initlab.initializers.residual_record import untraced_blocks
from initlab.initializers.trace import is_weight_layer


def find_blocks(model: nn.Module, branches: str = "", example_input=None) -> Discovery:
    """The residual blocks of ``model``: by ``branches`` globs when given, else by fx tracing
    plus PyTorch's transformer layers; when fx fails, from one forward pass of
    ``example_input`` (or the model's ``dummy_inputs``) or the structure of Hugging Face
    layers. ``Discovery.method`` says how, for the report."""
    modules = dict(model.named_modules())
    declared = list(expand_layers([n for n, m in modules.items() if is_weight_layer(m)], modules))
    declared = list(dict.fromkeys(declared))
    if branches:
        return Discovery(rule_blocks(model, branches), f"named by branches={branches!r}", declared)
    layer_blocks = torch_layer_blocks(model)
    try:
        gm = fx.symbolic_trace(model)
    except Exception as error:  # fx raises many kinds of errors on untraceable code
        why = f"torch.fx could not trace the model ({type(error).__name__})"
        return untraced_blocks(model, example_input, why, layer_blocks, declared)
    graph = FxBlocks(model, gm.graph)
    fx_blocks, notes = graph.blocks()
    blocks = merge_layer_blocks(fx_blocks, layer_blocks)
    method = "found by torch.fx tracing" + (
        " and PyTorch's transformer layers" if len(blocks) > len(fx_blocks) else ""
    )
    return Discovery(blocks, method, graph.order(), gm, tuple(notes), True)
