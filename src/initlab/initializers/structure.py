"""Activations read from module structure, for models that neither fx nor an example input
can show (a last resort before declaration order, which gets some real layers wrong).

* PyTorch's ``TransformerEncoderLayer`` / ``TransformerDecoderLayer`` keep their feed-forward
  activation as an attribute (``activation = F.relu`` by default, or any module): it follows
  ``linear1``; the attention projections and ``linear2`` feed a residual add.
* An MLP module that holds its activation as an attribute (``act``, ``act_fn``,
  ``activation``, ``activation_fn``, ``intermediate_act_fn``: Hugging Face's GPT2MLP,
  LlamaMLP, BertIntermediate, ...): in a gated MLP (a child named ``gate_proj``, ``w1``,
  ``wi_0`` or ``gate``) the activation follows the gate projection and the others are linear
  (``down(act(gate(x)) * up(x))``); otherwise it follows the first weight layer declared.

>>> import torch.nn.functional as F
>>> from torch import nn
>>> layer = nn.TransformerEncoderLayer(16, 2, 32, activation=F.gelu)
>>> {k: (v.spec if v else None) for k, v in structural_activations(layer).items()}["linear1"]
'gelu'
"""

from __future__ import annotations

from torch import nn

from initlab.activations import FUNCTIONS, Activation, from_module
from initlab.initializers.fans import is_hf_conv1d

_ACT_ATTRS = ("act", "act_fn", "activation", "activation_fn", "intermediate_act_fn")
_GATE_NAMES = ("gate_proj", "w1", "wi_0", "gate")
_TORCH_LAYERS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def _as_activation(value) -> Activation | None:
    if isinstance(value, nn.Module):
        act = from_module(value)
        return act if act is not None and act.name != "identity" else None
    try:
        name = FUNCTIONS.get(value)
    except TypeError:  # unhashable attribute
        return None
    return Activation(name) if name else None


def _weight_children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    linear = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [(n, m) for n, m in module.named_children() if isinstance(m, linear) or is_hf_conv1d(m)]


def structural_activations(model: nn.Module) -> dict[str, Activation | None]:
    """Weight-layer name -> the activation module structure says follows it (None: linear).

    Only layers the rules above recognise are in the result."""
    found: dict[str, Activation | None] = {}
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, _TORCH_LAYERS):
            act = _as_activation(module.activation)
            for child, sub in module.named_modules():
                if isinstance(sub, (nn.Linear, nn.MultiheadAttention)):
                    found[prefix + child] = act if child == "linear1" else None
            continue
        act = next((a for a in (_as_activation(getattr(module, attr, None)) for attr in _ACT_ATTRS)
                    if a is not None), None)  # fmt: skip
        children = _weight_children(module)
        if act is None or not children:
            continue
        gate = next((n for n, _ in children if n in _GATE_NAMES), None)
        first = gate or children[0][0]
        for child, _ in children:
            found[prefix + child] = act if child == first else None
    return found
