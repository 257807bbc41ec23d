"""Mean |output| of every weight layer: the μP coordinate check's measurement.

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 2))
>>> with MeanAbs(model) as probe:
...     _ = model(torch.ones(4, 3))
>>> list(probe.values), [name for name, _ in weight_layers(model)]
(['0'], ['0'])
"""

from __future__ import annotations

from functools import partial

from torch import nn


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules owning a weight matrix (or kernel) directly, in definition order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(getattr(m, "weight", None), nn.Parameter) and m.weight.ndim >= 2
    ]


class MeanAbs:
    """Forward hooks recording mean |output| of each weight layer on the next forward."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = weight_layers(model)
        self.values: dict[str, float] = {}
        self._handles: list = []

    def __enter__(self) -> MeanAbs:
        for name, module in self.layers:
            self._handles.append(module.register_forward_hook(partial(self._record, name)))
        return self

    def _record(self, name: str, _module, _args, output) -> None:
        self.values[name] = float(output.detach().abs().mean())

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
