"""LSUV (Mishkin & Matas 2016): orthogonal weights, then each layer rescaled on real data.

Unlike the reference package, layers are visited in the order the forward pass *calls*
them (found with forward hooks, not registration order), statistics pool several batches,
scaling can be per output channel, the mean can be corrected through the bias, and every
draw comes from the given generator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from initlab.errors import InitSpecError
from initlab.initializers.apply import init_, realized_std
from initlab.initializers.init_report import InitReport
from initlab.initializers.registry import ModelProcedure, register
from initlab.initializers.trace import is_weight_layer

# Layers whose output is linear in their weight, so dividing the weight divides the output.
RESCALABLE = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.Embedding)
_DEAD = 1e-8  # an output std below this cannot be rescaled (dead or constant channel)


class _Stop(Exception):
    """Raised by a hook once the layer being measured has been seen: skip the rest."""


def input_batches(data, limit: int, who: str) -> list[torch.Tensor]:
    """``data`` as a list of input batches: a tensor is split into ``limit`` chunks, an
    iterable is cut after ``limit`` items; ``(inputs, labels)`` items keep the inputs."""
    if data is None:
        raise InitSpecError(
            f"'{who}' is data-driven: pass data= (an input tensor or an iterable of input "
            "batches), e.g. init_(model, 'lsuv', data=x_train[:2048], generator=g)."
        )
    if isinstance(data, torch.Tensor):
        if data.dim() == 0 or len(data) == 0:
            raise InitSpecError(f"'{who}' got an empty data tensor; give at least one sample.")
        return [b for b in torch.tensor_split(data, min(limit, len(data))) if len(b)]
    if not isinstance(data, Iterable):
        raise InitSpecError(
            f"'{who}' data must be a tensor or an iterable of batches, got {type(data).__name__}."
        )
    batches = []
    for item in data:
        if isinstance(item, (tuple, list)) and item and isinstance(item[0], torch.Tensor):
            item = item[0]  # (inputs, labels) as a DataLoader yields them
        if not isinstance(item, torch.Tensor):
            raise InitSpecError(
                f"'{who}' data batches must be tensors or (inputs, labels) pairs, got "
                f"{type(item).__name__}."
            )
        batches.append(item)
        if len(batches) >= limit:
            break
    if not batches:
        raise InitSpecError(f"'{who}' got no batches from data; give at least one.")
    return batches


def forward_call_order(model: nn.Module, batch: torch.Tensor) -> list[tuple[str, int]]:
    """Weight layers in the order one forward pass first calls them, with calls per pass.

    >>> m = torch.nn.Sequential(torch.nn.Linear(3, 2))
    >>> forward_call_order(m, torch.zeros(1, 3))
    [('0', 1)]
    """
    calls: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if is_weight_layer(module):
            hook = lambda m, i, o, n=name: calls.__setitem__(n, calls.get(n, 0) + 1)  # noqa: E731
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for h in handles:
            h.remove()
    return list(calls.items())  # dicts keep insertion order: the first-call order


@dataclass
class _Moments:
    """Per-channel streaming mean and sum of squared deviations (Chan's merge), float64."""

    n: int = 0
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None

    def add(self, y: torch.Tensor) -> None:
        y = y.detach().double()
        k = y.shape[0]
        bm = y.mean(0)
        bm2 = ((y - bm) ** 2).sum(0)
        if self.mean is None:
            self.n, self.mean, self.m2 = k, bm, bm2
            return
        delta = bm - self.mean
        total = self.n + k
        self.mean = self.mean + delta * k / total
        self.m2 = self.m2 + bm2 + delta**2 * self.n * k / total
        self.n = total

    def channel_std(self) -> torch.Tensor:
        return (self.m2 / self.n).sqrt()

    def pooled(self) -> tuple[float, float]:
        """Mean and std over every element, all channels together."""
        grand = float(self.mean.mean())
        var = float(
            (self.m2.sum() + self.n * ((self.mean - grand) ** 2).sum()) / (self.n * len(self.mean))
        )
        return grand, var**0.5


def _full(module_name: str, pname: str) -> str:
    return f"{module_name}.{pname}" if module_name else pname


def _channel_axis(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.modules.conv._ConvNd):
        return 1 if out.dim() == len(module.kernel_size) + 2 else 0  # batched or not
    return out.dim() - 1


def _measure(model, module, calls: int, batches) -> _Moments:
    moments = _Moments()
    seen = [0]

    def hook(m, inputs, out):
        axis = _channel_axis(m, out)
        moments.add(out.movedim(axis, -1).reshape(-1, out.shape[axis]))
        seen[0] += 1
        if seen[0] >= calls:
            raise _Stop  # later layers cannot change this layer's output

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for batch in batches:
                seen[0] = 0
                try:
                    model(batch)
                except _Stop:
                    pass
    finally:
        handle.remove()
    return moments


def _scale_channels(module: nn.Module, scale: torch.Tensor) -> None:
    """Multiply each output channel's weights by ``scale[c]`` (one value per channel)."""
    w = module.weight
    s = scale.to(w.dtype)
    with torch.no_grad():
        if isinstance(module, nn.Embedding):
            w.mul_(s.unsqueeze(0))
        elif isinstance(module, nn.modules.conv._ConvTransposeNd):
            g = module.groups  # weight [in, out/g, k...]; channel c = group * out/g + j
            view = w.view(g, w.shape[0] // g, w.shape[1], -1)
            view.mul_(s.view(g, 1, w.shape[1], 1))
        else:  # Linear, Bilinear, Conv: weight [out, ...]
            w.mul_(s.view(-1, *([1] * (w.dim() - 1))))


@register("lsuv")
@dataclass(frozen=True)
class LSUV(ModelProcedure):
    """Orthogonal pre-init, then each layer in forward call order divided by its output std
    on ``data`` until ``|std - 1| <= tol`` (per output channel with ``per_channel``; with
    ``center`` the bias also removes each channel's mean). ``batches``: how many batches the
    statistics pool (an iterable is cut after that many; a tensor is split into that many).

    >>> import initlab
    >>> model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    >>> x = torch.randn(512, 20, generator=torch.Generator().manual_seed(1))
    >>> report = initlab.init_(model, "lsuv", data=x, generator=torch.Generator().manual_seed(0))
    >>> [(r["layer"], r["converged"]) for r in report.extra["lsuv"]]
    [('0', True), ('2', True)]
    >>> LSUV(tol=0.1, per_channel=True).to_spec()
    'lsuv:tol=0.1,per_channel=true'
    """

    formula = "orthogonal, then W /= std(layer output on data), layer by layer in call order"
    needs_data = True
    tol: float = 0.05
    max_iters: int = 10
    per_channel: bool = False
    center: bool = False
    batches: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.tol < 1:
            raise InitSpecError(f"'lsuv' tol must be in (0, 1), got {self.tol}; e.g. tol=0.05.")
        if self.max_iters < 1 or self.batches < 1:
            raise InitSpecError(
                f"'lsuv' max_iters and batches must be >= 1, got max_iters={self.max_iters}, "
                f"batches={self.batches}."
            )

    def apply(
        self, model: nn.Module, *, data, generator: torch.Generator, bias=None, rules=None,
        example_input=None,
    ) -> InitReport:  # fmt: skip
        """Run LSUV on ``model`` in place; ``report.extra["lsuv"]`` has one dict per layer."""
        batches = input_batches(data, self.batches, "lsuv")
        report = init_(model, "orthogonal", generator=generator, bias=bias, rules=rules)
        report.notes.append("lsuv: orthogonal pre-init from the same generator")
        modules = dict(model.named_modules())
        flags = {m: m.training for m in model.modules()}
        model.eval()  # dropout off, batch-norm running statistics left alone
        try:
            order = forward_call_order(model, batches[0])
            layers = []
            for index, (name, calls) in enumerate(order):
                module = modules[name]
                why = self._why_not(name, module, report)
                if why:
                    report.skipped.append((_full(name, "weight"), why))
                    continue
                layers.append(self._calibrate(model, index, name, module, calls, batches, report))
        finally:
            for m, flag in flags.items():
                m.training = flag
        called = {name for name, _ in order}
        for name, module in modules.items():
            if is_weight_layer(module) and name not in called:
                report.skipped.append(
                    (_full(name, "weight"), "lsuv: not called by the forward pass")
                )
        report.extra["lsuv"] = layers
        for d in layers:
            state = "converged" if d["converged"] else "NOT converged"
            report.notes.append(
                f"lsuv call #{d['call_index']} layer {d['layer'] or '(model)'}: std {d['std']:.4f} "
                f"after {d['iterations']} rescale(s), {state}"
            )
        return report

    def _why_not(self, name: str, module: nn.Module, report: InitReport) -> str:
        if not isinstance(module, RESCALABLE):
            return (
                f"lsuv: {type(module).__name__} output is not linear in its weight; kept orthogonal"
            )
        row = next((r for r in report.rows if r.name == _full(name, "weight")), None)
        if row is None or row.scheme != "orthogonal":
            return "lsuv: weight set by a rule (or shared); not rescaled"
        return ""

    def _calibrate(self, model, index, name, module, calls, batches, report) -> dict:
        has_bias = getattr(module, "bias", None) is not None
        iterations = 0
        while True:
            moments = _measure(model, module, calls, batches)
            mean, std = moments.pooled()
            ch_std, ch_mean = moments.channel_std(), moments.mean
            if self.center and has_bias:  # after centering, the pooled std is the within std
                std_now = (ch_std**2).mean().sqrt().view(1)
            else:
                std_now = torch.tensor([std], dtype=torch.float64)
            stds = ch_std if self.per_channel else std_now
            live = stds >= _DEAD
            ok = bool(((stds[live] - 1).abs() <= self.tol).all())
            if self.center and has_bias:
                ok = ok and float(ch_mean.abs().max()) <= self.tol
            if ok or not live.any() or iterations >= self.max_iters:
                break
            scale = torch.where(live, 1.0 / stds.clamp_min(_DEAD), torch.ones_like(stds))
            scale = scale.expand(len(ch_mean))
            if self.center and has_bias:  # y' = (y - m_c) * scale_c
                with torch.no_grad():
                    b = module.bias
                    b.copy_(((b.double() - ch_mean) * scale).to(b.dtype))
            _scale_channels(module, scale)
            iterations += 1
        dead = not bool(live.all())
        result = {
            "layer": name, "call_index": index, "iterations": iterations, "std": std,
            "mean": mean, "min_channel_std": float(ch_std.min()),
            "max_channel_std": float(ch_std.max()), "converged": ok and not dead,
        }  # fmt: skip
        self._update_rows(name, module, report)
        if dead or not ok:
            reason = "an output channel is constant (std 0)" if dead else f"{iterations} iterations"
            report.notes.append(
                f"WARNING lsuv: layer {name} did not converge ({reason}): std {std:.4f}, channel "
                f"std {result['min_channel_std']:.4f}..{result['max_channel_std']:.4f}, tol "
                f"{self.tol}"
            )
        elif self.center and not has_bias:
            report.notes.append(f"lsuv: layer {name} has no bias; its mean was not corrected")
        return result

    def _update_rows(self, name, module, report: InitReport) -> None:
        for pname in ("weight", "bias") if self.center else ("weight",):
            row = next((r for r in report.rows if r.name == _full(name, pname)), None)
            if row is not None:
                param = module.get_parameter(pname)
                row.scheme = self.to_spec()
                row.target_std = None
                row.realized_std = realized_std(param)
