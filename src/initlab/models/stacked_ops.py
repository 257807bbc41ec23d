"""Batched-kernel forms of the layers of an ``nn.Sequential``, for K models at once.

An activation in flight has one of three layouts:

* ``shared``   (G, B, ...): G distinct input batches; member k reads batch k // (K // G).
  Inputs start here, so the first layer runs ONE matmul (or conv) for all K members.
* ``stacked``  (K, B, ...): one slice per member; Linear layers are ``baddbmm``.
* ``channels`` (B, K*C, H, W): conv feature maps, member-major channels; convs are grouped
  convs (``groups=K``), batch norm and pooling work per channel, so per member.

Nothing here mixes members: every reduction runs within one member's slice or channels, so
a NaN in one member never reaches another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from initlab.activations import from_module
from initlab.models.mup import scale_input

POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class Unstackable(Exception):
    """The module has no batched-kernel form here; the caller falls back to vmap or a loop."""


@dataclass
class Flow:
    """An activation in flight and what the forward pass needs to know."""

    x: torch.Tensor
    layout: str  # "shared" | "stacked" | "channels"
    K: int
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    train: bool
    generators: list[torch.Generator] | None = None
    notes: list[str] = field(default_factory=list)
    capture: frozenset[int] = frozenset()  # 0-based activation positions to keep
    captured: list[tuple[torch.Tensor, str]] = field(default_factory=list)  # (x, layout)

    @property
    def per_group(self) -> int:
        """Members per input group: K over the groups in the shared layout, else 1."""
        return self.K // self.x.shape[0] if self.layout == "shared" else 1


Op = Callable[[Flow], None]


def to_stacked(f: Flow) -> None:
    """Bring ``f`` into the (K, B, ...) layout."""
    if f.layout == "shared":
        m = f.per_group
        f.x = f.x.repeat_interleave(m, dim=0) if m > 1 else f.x
    elif f.layout == "channels":
        b, kc = f.x.shape[:2]
        f.x = f.x.reshape(b, f.K, kc // f.K, *f.x.shape[2:]).transpose(0, 1)
    f.layout = "stacked"


def to_channels(f: Flow) -> None:
    """Bring 4-D feature maps into the (B, K*C, H, W) layout."""
    if f.layout == "channels":
        return
    to_stacked(f)
    k, b, c = f.x.shape[:3]
    f.x = f.x.transpose(0, 1).reshape(b, k * c, *f.x.shape[3:])
    f.layout = "channels"


def _linear(prefix: str, module: nn.Linear) -> Op:
    wname, bname = f"{prefix}weight", f"{prefix}bias"
    has_bias = module.bias is not None
    # a width parametrization's readout multiplier (models.mup.apply_readout), applied to the
    # input as its forward pre-hook does in a plain call
    scale = getattr(module, "input_multiplier", None)

    def op(f: Flow) -> None:
        w = f.params[wname]  # (K, out, in): nn.Linear's layout with a leading K axis
        k, out, fan_in = w.shape
        if f.layout == "channels":
            to_stacked(f)
        # Groups of members that read the same input: G = K // m (G = K once stacked).
        g = f.x.shape[0]
        m = k // g
        mid = f.x.shape[1:-1]
        xt = f.x.reshape(g, -1, fan_in).transpose(1, 2)  # (G, in, N)
        if scale is not None:
            xt = xt * scale
        wg = w.reshape(g, m * out, fan_in)  # a view: members of a group side by side
        # y^T = W x^T, computed as (G, m*out, N): the weight gradient dY^T x lands in W's own
        # layout (no transpose copy), and for shared input the first layer is ONE matmul per
        # group. The result is used through a transposed view, which bmm reads as it is.
        if has_bias:
            bias = f.params[bname].reshape(g, m * out, 1)
            yt = torch.baddbmm(bias, wg, xt)
        else:
            yt = torch.bmm(wg, xt)
        y = yt.reshape(k, out, -1).transpose(1, 2)  # (K, N, out)
        f.x = y if len(mid) == 1 else y.reshape(k, *mid, out)
        f.layout = "stacked"

    return op


def _conv(prefix: str, module: nn.Conv2d) -> Op:
    if module.padding_mode != "zeros":
        raise Unstackable(f"{prefix}: padding_mode={module.padding_mode!r}")
    wname, bname = f"{prefix}weight", f"{prefix}bias"
    has_bias = module.bias is not None
    stride, padding, dilation, g0 = module.stride, module.padding, module.dilation, module.groups

    def op(f: Flow) -> None:
        w = f.params[wname]  # (K, out, in/g0, kh, kw)
        k, out = w.shape[:2]
        w = w.reshape(k * out, *w.shape[2:])
        b = f.params[bname].reshape(k * out) if has_bias else None
        if f.layout == "shared" and g0 == 1:
            g = f.x.shape[0]
            x = f.x[0] if g == 1 else f.x.transpose(0, 1).reshape(f.x.shape[1], -1, *f.x.shape[3:])
            groups = g  # member k of group j sees input channels of group j only
        else:
            to_channels(f)
            x, groups = f.x, k * g0
        f.x = F.conv2d(x, w, b, stride, padding, dilation, groups)
        f.layout = "channels"

    return op


def _batchnorm(prefix: str, module: nn.modules.batchnorm._BatchNorm) -> Op:
    if module.track_running_stats and module.momentum is None:
        raise Unstackable(f"{prefix}: BatchNorm with momentum=None (cumulative average)")
    affine, tracked = module.affine, module.track_running_stats
    eps, momentum, image = module.eps, module.momentum, isinstance(module, nn.BatchNorm2d)

    def op(f: Flow) -> None:
        if image:
            to_channels(f)
            x = f.x
        else:
            to_stacked(f)
            k, n, c, rest = *f.x.shape[:3], f.x.shape[3:]
            x = f.x.transpose(0, 1).reshape(n, k * c, *rest)  # members' features as channels
        rm = f.buffers[f"{prefix}running_mean"].reshape(-1) if tracked else None
        rv = f.buffers[f"{prefix}running_var"].reshape(-1) if tracked else None
        w = f.params[f"{prefix}weight"].reshape(-1) if affine else None
        b = f.params[f"{prefix}bias"].reshape(-1) if affine else None
        training = f.train or not tracked
        if f.train and tracked:
            f.buffers[f"{prefix}num_batches_tracked"].add_(1)
        y = F.batch_norm(x, rm, rv, w, b, training, momentum, eps)
        f.x = y if image else y.reshape(n, k, c, *rest).transpose(0, 1)

    return op


def _dropout(prefix: str, module: nn.Dropout) -> Op:
    p = float(module.p)

    def op(f: Flow) -> None:
        if not f.train or p == 0.0:
            return
        if f.generators is None:
            raise ValueError("dropout in training needs one generator per member")
        if f.layout == "shared":
            to_stacked(f)
        mask = torch.empty(f.x.shape, dtype=f.x.dtype, device=f.x.device)  # contiguous
        if f.layout == "stacked":
            for k, g in enumerate(f.generators):  # member k's mask from member k's generator
                mask[k].bernoulli_(1.0 - p, generator=g)
        else:
            b, kc = f.x.shape[:2]
            view = mask.view(b, f.K, kc // f.K, *f.x.shape[2:])
            for k, g in enumerate(f.generators):
                view[:, k] = torch.empty_like(view[:, k]).bernoulli_(1.0 - p, generator=g)
        f.x = f.x * mask.div_(1.0 - p)

    return op


def _flatten(module: nn.Flatten) -> Op:
    if module.start_dim != 1 or module.end_dim != -1:
        raise Unstackable("Flatten with other than start_dim=1, end_dim=-1")

    def op(f: Flow) -> None:
        if f.layout == "channels":
            to_stacked(f)
        f.x = f.x.flatten(2)

    return op


def _elementwise(module: nn.Module, position: int | None = None) -> Op:
    """An elementwise module; ``position`` counts activations (for activity penalties)."""

    def op(f: Flow) -> None:
        f.x = module(f.x)
        if position is not None and position in f.capture:
            if f.layout == "shared":
                to_stacked(f)
            f.captured.append((f.x, f.layout))

    return op


def _pool(module: nn.Module) -> Op:
    def op(f: Flow) -> None:
        if f.layout == "shared":
            g, b = f.x.shape[:2]
            f.x = module(f.x.flatten(0, 1)).unflatten(0, (g, b))
            return
        to_channels(f)
        f.x = module(f.x)

    return op


def leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The modules of nested ``nn.Sequential`` containers in call order, with name prefixes."""
    if not isinstance(model, nn.Sequential):
        raise Unstackable(f"{type(model).__name__} is not an nn.Sequential")
    out = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            out += leaves(child, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}.", child))
    return out


def _check_hooks(prefix: str, module: nn.Module) -> None:
    """Batched kernels do not call modules, so a module's hooks would be skipped silently:
    such a model runs in vmap or loop mode instead (those call the modules). The one hook
    they honour is the readout multiplier's, which ``_linear`` applies itself."""
    pre = [h for h in module._forward_pre_hooks.values() if h is not scale_input]
    if pre or module._forward_hooks:
        raise Unstackable(f"{prefix.rstrip('.') or 'model'}: {type(module).__name__} has hooks")


def compile_ops(model: nn.Module) -> list[Op]:
    """Batched ops for every layer of ``model``, or :class:`Unstackable`."""
    ops: list[Op] = []
    activations = 0
    for prefix, module in leaves(model):
        _check_hooks(prefix, module)
        if isinstance(module, nn.Linear):
            ops.append(_linear(prefix, module))
        elif type(module) is nn.Conv2d:
            ops.append(_conv(prefix, module))
        elif type(module) in (nn.BatchNorm1d, nn.BatchNorm2d):
            ops.append(_batchnorm(prefix, module))
        elif type(module) is nn.Dropout:
            ops.append(_dropout(prefix, module))
        elif type(module) is nn.Flatten:
            ops.append(_flatten(module))
        elif isinstance(module, POOLS):
            ops.append(_pool(module))
        elif isinstance(module, nn.Identity):
            ops.append(_elementwise(module))
        elif from_module(module) is not None:
            ops.append(_elementwise(module, activations))
            activations += 1
        else:
            raise Unstackable(f"{prefix.rstrip('.')}: {type(module).__name__}")
    return ops
