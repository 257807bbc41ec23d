"""``torch_default``: exactly what PyTorch's ``reset_parameters`` does, per layer type.

Kept so that "the default" can sit in a comparison next to the real schemes. It surprises
most people: Linear and Conv weights are ``kaiming_uniform_(a=sqrt(5))``, i.e.
U(+-1/sqrt(fan_in)) (std 1/sqrt(3 fan_in), a third of LeCun's variance), and so are their
biases; Embedding is N(0, 1); RNNs are U(+-1/sqrt(hidden)) everywhere; MultiheadAttention's
packed projection is Xavier-uniform over the whole [3E, E] tensor with zero biases. Fans here
are PyTorch's own (dim 1 as input even for ConvTranspose), so draws match PyTorch bit for bit
when the generator is seeded like the global RNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from initlab.initializers import distributions as D
from initlab.initializers.fans import tensor_fans
from initlab.initializers.registry import Initializer, LayerContext, register


def _is_mha_out_proj(module) -> bool:
    # MultiheadAttention zeroes its out_proj bias after Linear's own reset
    return type(module).__name__ == "NonDynamicallyQuantizableLinear"


@register("torch_default", aliases=("pytorch_default",))
@dataclass(frozen=True)
class TorchDefault(Initializer):
    formula = "per layer type, as torch reset_parameters (Linear/Conv: U(+-1/sqrt(fan_in)))"
    per_block = False  # PyTorch fills packed tensors whole
    owns_bias = True  # with bias=None, biases follow PyTorch too

    def _rule(self, shape, ctx: LayerContext) -> tuple[str, float]:
        """(distribution, parameter): 'u' bound, 'n' std, 'c' constant, 'xu'/'xn' xavier."""
        module, name = ctx.module, ctx.param_name
        is_bias = name.endswith("bias") and len(shape) == 1
        if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
            return "u", 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0
        if isinstance(module, nn.MultiheadAttention):
            if name in ("in_proj_bias",):
                return "c", 0.0
            if name in ("bias_k", "bias_v"):
                return "xn", 0.0
            return "xu", 0.0
        if isinstance(module, nn.Embedding):
            return "n", 1.0
        if is_bias:
            if _is_mha_out_proj(module):
                return "c", 0.0
            fan_in = ctx.torch_fan_in
            return "u", 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        fan_in, _ = tensor_fans(shape)
        return "u", 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0

    def target_std(self, ctx):
        kind, value = self._rule(ctx.shape, ctx)
        if kind == "u":
            return value / math.sqrt(3.0)
        if kind == "n":
            return value
        if kind == "c":
            return 0.0
        fan_in, fan_out = tensor_fans(ctx.shape)
        return math.sqrt(2.0 / (fan_in + fan_out))

    def sample(self, shape, ctx, generator, device, out=None):
        kind, value = self._rule(shape, ctx)
        if kind == "u":
            return D.uniform(shape, -value, value, generator, device, out)
        if kind == "n":
            return D.normal(shape, 0.0, value, generator, device, out)
        if kind == "c":
            return torch.full(shape, value, dtype=torch.float32, device=device)
        fan_in, fan_out = tensor_fans(shape)
        std = math.sqrt(2.0 / (fan_in + fan_out))
        if kind == "xn":
            return D.normal(shape, 0.0, std, generator, device)
        limit = math.sqrt(3.0) * std
        return D.uniform(shape, -limit, limit, generator, device)
