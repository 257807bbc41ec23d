"""Fan-in and fan-out for every layer kind, in one place.

Conventions (``fan_in`` = weights feeding one output element in the forward pass):

* Linear ``[out, in]``: fan_in = in, fan_out = out (as PyTorch).
* ConvNd ``[out, in/groups, *k]``: fan_in = in/groups * prod(k) (as PyTorch);
  fan_out = out/groups * prod(k). PyTorch uses out * prod(k) for fan_out, which over-counts
  grouped convolutions by the group count; for ``groups=1`` both agree.
* ConvTransposeNd ``[in, out/groups, *k]``: the forward pass sums over input channels, so
  fan_in = in/groups * prod(k) and fan_out = out/groups * prod(k). PyTorch's generic rule
  reads dim 1 as the input and so *swaps* the two for transposed convolutions; ``torch_default``
  keeps PyTorch's own numbers. (With stride s, each output element really sees about
  prod(k)/prod(s) taps; like Keras and PyTorch we do not divide by the stride.)
* RNN/LSTM/GRU ``weight_ih [G*hidden, input]``, ``weight_hh [G*hidden, hidden]``: fans per gate
  block, i.e. fan_in = dim 1 (input, or hidden), fan_out = hidden; each of the G blocks is filled
  alone. With ``proj_size`` the recurrent input is the projection: ``weight_hh [4*hidden, proj]``
  (fan_in = proj), layers above the first read ``weight_ih [4*hidden, proj * directions]``, and
  the projection ``weight_hr [proj, hidden]`` is one plain block: fan_in = hidden,
  fan_out = proj.
* Hugging Face ``transformers.pytorch_utils.Conv1D`` (GPT-2's c_attn, c_proj, c_fc) stores its
  weight ``[in, out]`` (the transpose of Linear) and computes ``x @ W + b``: fan_in = dim 0,
  fan_out = dim 1.
* MultiheadAttention packed ``in_proj_weight [3E, E]``: three ``[E, E]`` blocks (q, k, v).
* Anything else with >= 2 dims: PyTorch's rule (dim 1 x receptive field, dim 0 x receptive).
* 1-d tensors (biases): fan_in of the layer they belong to (the caller passes it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_RNN_GATES = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3, nn.RNNCell: 1, nn.LSTMCell: 4, nn.GRUCell: 3}


def is_hf_conv1d(module: nn.Module) -> bool:
    """Hugging Face's ``Conv1D``, a Linear with its weight stored ``[in, out]`` (found by
    name, so that transformers need not be installed)."""
    cls = type(module)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers")


@dataclass(frozen=True)
class Block:
    """A part of a parameter filled as one layer: rows ``[start, stop)`` of dim 0."""

    start: int
    stop: int
    fan_in: int
    fan_out: int


def tensor_fans(shape: tuple[int, ...] | torch.Size) -> tuple[int, int]:
    """PyTorch's shape-only rule: (dim1 * receptive, dim0 * receptive); 1-d: (n, n)."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def module_blocks(module: nn.Module, param_name: str, shape: tuple[int, ...]) -> list[Block]:
    """How to fill ``module.<param_name>``: one or more row blocks, each with its own fans."""
    rows = shape[0] if shape else 1
    if isinstance(module, _CONV):
        receptive = math.prod(shape[2:])
        groups = module.groups
        return [Block(0, rows, shape[1] * receptive, rows // groups * receptive)]
    if isinstance(module, _CONV_T):
        receptive = math.prod(shape[2:])
        groups = module.groups
        return [Block(0, rows, rows // groups * receptive, shape[1] * receptive)]
    if is_hf_conv1d(module) and len(shape) == 2:
        return [Block(0, rows, shape[0], shape[1])]
    gates = _RNN_GATES.get(type(module))
    # only the gate-stacked tensors split; LSTM's projection weight_hr_* is a plain [proj, hidden]
    if gates and len(shape) == 2 and param_name.startswith(("weight_ih", "weight_hh")):
        hidden = rows // gates
        return [Block(g * hidden, (g + 1) * hidden, shape[1], hidden) for g in range(gates)]
    if isinstance(module, nn.MultiheadAttention) and param_name == "in_proj_weight":
        e = rows // 3
        return [Block(i * e, (i + 1) * e, shape[1], e) for i in range(3)]
    fan_in, fan_out = tensor_fans(shape)
    return [Block(0, rows, fan_in, fan_out)]
