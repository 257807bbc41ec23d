"""``torch_default``: exactly what PyTorch's constructors draw, per layer type.

Kept so that "the default" can sit in a comparison next to the real schemes. It surprises
most people: Linear and Conv weights are ``kaiming_uniform_(a=sqrt(5))``, i.e.
U(+-1/sqrt(fan_in)) (std 1/sqrt(3 fan_in), a third of LeCun's variance), and so are their
biases; Bilinear is U(+-1/sqrt(in1)) for weight and bias; Embedding and EmbeddingBag are
N(0, 1); RNNs are U(+-1/sqrt(hidden)) everywhere (projections included); MultiheadAttention's
packed projection is Xavier-uniform over the whole [3E, E] tensor with zero biases; Hugging
Face's Conv1D is N(0, 0.02) with a zero bias. Fans here are PyTorch's own (dim 1 as input even
for ConvTranspose), the draws are torch.nn.init's own calls, and modules are visited in the
order their constructors run (:meth:`TorchDefault.fill_order`), so a model gets the very
values its construction gave it when the generator is seeded like the global RNG.

Not matched: ``nn.Transformer`` re-draws every >= 2-d parameter with ``xavier_uniform_``
after both stacks are built, while its biases keep their construction draws; a fill that
visits each module once cannot place a Linear's weight and bias at those two points of the
random stream. Its biases (and norms) still come out bit-identical; its 2-d weights get the
per-layer rules above.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import init

from initlab.initializers import distributions as D
from initlab.initializers.fans import is_hf_conv1d, tensor_fans
from initlab.initializers.registry import LayerContext, TensorScheme, register

# Linear/Conv weights: kaiming_uniform_(a=sqrt(5)); its bound is computed exactly as torch does
_KAIMING_A = math.sqrt(5)
_KAIMING_GAIN = init.calculate_gain("leaky_relu", _KAIMING_A)
# containers whose ``layers`` are deep copies of one constructed layer (torch's _get_clones)
_CLONED_STACKS = (nn.TransformerEncoder, nn.TransformerDecoder)


def _is_mha_out_proj(module) -> bool:
    # MultiheadAttention zeroes its out_proj bias after Linear's own reset has drawn it
    return type(module).__name__ == "NonDynamicallyQuantizableLinear"


def _inverse_sqrt(n: int) -> float:
    return 1.0 / math.sqrt(n) if n > 0 else 0.0


@register("torch_default", aliases=("pytorch_default",))
@dataclass(frozen=True)
class TorchDefault(TensorScheme):
    formula = "per layer type, as torch reset_parameters (Linear/Conv: U(+-1/sqrt(fan_in)))"
    per_block = False  # PyTorch fills packed tensors whole
    owns_bias = True  # with bias=None, biases follow PyTorch too

    def _rule(self, shape, ctx: LayerContext) -> tuple[str, float]:
        """(distribution, parameter): 'k' kaiming(a=sqrt 5) bound, 'u' bound, 'z' bound drawn
        then zeroed, 'n' std, 'c' constant, 'xu'/'xn' xavier (parameter unused)."""
        module, name = ctx.module, ctx.param_name
        is_bias = name.endswith("bias") and len(shape) == 1
        if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
            return "u", _inverse_sqrt(module.hidden_size)
        if isinstance(module, nn.MultiheadAttention):
            if name == "in_proj_bias":
                return "c", 0.0
            if name in ("bias_k", "bias_v"):
                return "xn", 0.0
            return "xu", 0.0  # in_proj_weight, or q/k/v_proj_weight when kdim/vdim differ
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            return "n", 1.0
        if is_hf_conv1d(module):
            # transformers' Conv1D.__init__: bias torch.zeros, weight normal_(std=0.02)
            return ("c", 0.0) if is_bias else ("n", 0.02)
        if isinstance(module, nn.Bilinear):
            # torch: bound = 1/sqrt(weight.size(1)) = 1/sqrt(in1), for weight and bias alike
            return "u", _inverse_sqrt(module.weight.size(1))
        if is_bias:
            bound = _inverse_sqrt(ctx.torch_fan_in)
            return ("z", bound) if _is_mha_out_proj(module) else ("u", bound)
        fan_in, _ = tensor_fans(shape)
        if len(shape) < 2:  # kaiming_uniform_ needs 2 dims; a rule may aim this at a 1-d weight
            return "u", _inverse_sqrt(fan_in)
        return "k", math.sqrt(3.0) * (_KAIMING_GAIN / math.sqrt(fan_in)) if fan_in > 0 else 0.0

    def target_std(self, ctx):
        """The std of the rule PyTorch's own constructor applies to this tensor."""
        kind, value = self._rule(ctx.shape, ctx)
        if kind in ("u", "k"):
            return value / math.sqrt(3.0)
        if kind == "n":
            return value
        if kind in ("c", "z"):
            return 0.0
        fan_in, fan_out = tensor_fans(ctx.shape)
        return math.sqrt(2.0 / (fan_in + fan_out))

    def sample(self, shape, ctx, generator, device, out=None):
        """Draw as the module's PyTorch constructor does, with torch.nn.init's own functions."""
        kind, value = self._rule(shape, ctx)
        if kind == "c":
            return torch.full(shape, value, dtype=torch.float32, device=device)
        target = out if out is not None else torch.empty(shape, dtype=torch.float32, device=device)
        # torch.nn.init's own functions, so that bounds and kernels are torch's to the bit
        if kind == "k":
            return init.kaiming_uniform_(target, a=_KAIMING_A, generator=generator)
        if kind == "xu":
            return init.xavier_uniform_(target, generator=generator)
        if kind == "xn":
            return init.xavier_normal_(target, generator=generator)
        if kind == "n":
            D.normal(shape, 0.0, value, generator, device, target)
            padding_idx = getattr(ctx.module, "padding_idx", None)
            if isinstance(ctx.module, nn.EmbeddingBag) and padding_idx is not None:
                target[padding_idx] = 0.0  # fill_model zeroes Embedding's row, not the bag's
            return target
        D.uniform(shape, -value, value, generator, device, target)
        if kind == "z":
            target.zero_()  # drawn only to move the stream as Linear's reset did
        return target

    def fill_order(self, model: nn.Module, generator: torch.Generator):
        """Modules in the order PyTorch's constructors draw: post-order (a module's children
        are built, and draw, before its own reset runs, e.g. MultiheadAttention's out_proj
        before in_proj_weight). TransformerEncoder/Decoder layers are deep copies of one
        layer, so the generator is rewound to the same state before each of them."""
        return _construction_order(model, "", {model}, generator)


def _construction_order(
    module: nn.Module, prefix: str, memo: set, generator: torch.Generator
) -> Iterator[tuple[str, nn.Module]]:
    # lazy on purpose: fill_model draws a module's parameters before asking for the next one,
    # so the state saved below is the state at the first clone's first draw
    cloned = isinstance(module, _CLONED_STACKS)
    for name, child in module.named_children():
        if child in memo:  # shared modules: the first path wins, as in named_modules()
            continue
        memo.add(child)
        path = f"{prefix}.{name}" if prefix else name
        if cloned and name == "layers":
            start = generator.get_state()
            for i, (layer_name, layer) in enumerate(child.named_children()):
                if layer in memo:
                    continue
                memo.add(layer)
                if i:
                    generator.set_state(start)
                yield from _construction_order(layer, f"{path}.{layer_name}", memo, generator)
            yield path, child
        else:
            yield from _construction_order(child, path, memo, generator)
    yield prefix, module
