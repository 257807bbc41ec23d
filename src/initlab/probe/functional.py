"""Activations called as functions (``F.relu(x)``, ``torch.tanh(x)``, ``x.sigmoid()``): a
:class:`~torch.overrides.TorchFunctionMode` that is active only while the probed model's
forward runs and hands each such output to the collector as a layer of its own.

A functional activation is named after the leaf module whose output it follows, e.g.
``fc1.relu`` for ``F.relu(self.fc1(x))`` (``input.relu`` before any module ran); calls inside
an activation module (``nn.ReLU`` calls ``F.relu`` itself) are not counted twice.

>>> import torch
>>> from torch import nn
>>> class Net(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)
...     def forward(self, x):
...         return self.fc2(torch.tanh(self.fc1(x)))
>>> from initlab.probe import probe
>>> [x.name for x in probe(Net(), torch.randn(16, 4)).layers]
['fc1', 'fc1.tanh', 'fc2']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.overrides import TorchFunctionMode

from initlab.initializers.trace import activation_from_call

if TYPE_CHECKING:
    from initlab.probe.hooks import Collector


class FunctionalActivations(TorchFunctionMode):
    """Reports functional activation outputs to ``collector.record_functional``."""

    def __init__(self, collector: Collector) -> None:
        super().__init__()
        self.collector = collector
        self.inside_modules = 0  # > 0 inside an activation module: its own call is measured
        self.active = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.inside_modules == 0 and isinstance(out, torch.Tensor):
            act = activation_from_call(func, args, kwargs)
            if act is not None and act.name != "identity":
                self.collector.record_functional(act, out)
        return out

    def start(self) -> None:
        """Enter the mode (at the model's forward pre-hook)."""
        if not self.active:
            self.__enter__()
            self.active = True

    def stop(self) -> None:
        """Leave the mode (at the model's forward hook, which also runs when forward raises)."""
        if self.active:
            self.active = False
            self.__exit__(None, None, None)
