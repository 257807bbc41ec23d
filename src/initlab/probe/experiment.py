"""The classic histogram experiment: a stack of Linear + activation fed N(0, 1) inputs.

Five 100-unit layers and 1,000 inputs show what a weight scale does: sigmoid outputs pile
up at 0 and 1 with N(0, 1) weights, sit at 0.5 with N(0, 0.01), stay spread with
std sqrt(1/n); ReLU keeps its spread with He and loses it layer by layer with sqrt(1/n).
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from initlab.activations import resolve
from initlab.errors import ConfigError
from initlab.initializers import get, init_
from initlab.probe.probe import probe
from initlab.results.probe_records import HistogramRun


def input_seed(seed: int) -> int:
    """The seed of the input draw, derived from ``seed`` so that inputs and weights never
    share a random stream and every init of a grid sees the same inputs."""
    digest = hashlib.sha256(f"initlab.histogram.inputs:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def build_stack(activation: str, layers: int, width: int, bias: bool) -> nn.Sequential:
    """``layers`` x (Linear(width, width) + activation), as in the classic figure."""
    act = resolve(activation)
    modules: list[nn.Module] = []
    for _ in range(layers):
        modules += [nn.Linear(width, width, bias=bias), act.module()]
    return nn.Sequential(*modules)


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


def histogram_experiment(
    activation: str = "sigmoid",
    init: str = "normal:std=1",
    *,
    layers: int = 5,
    width: int = 100,
    samples: int = 1000,
    seed: int = 0,
    bins: int = 30,
    bias: bool = False,
    loss: str | None = "mean_square",
) -> HistogramRun:
    """Build the stack, init it with ``initlab.init_`` from ``Generator().manual_seed(seed)``,
    probe it on ``samples`` N(0, 1) inputs and return the plain record.

    ``loss="mean_square"`` (the default) also backpropagates the mean of squares of the last
    output, so each layer gets its gradient std and each weight its gradient norm (and the
    gradient rules of the diagnosis can fire); ``loss=None`` measures the forward only.

    >>> run = histogram_experiment("tanh", "xavier_normal", layers=2, width=8, samples=16)
    >>> [x.name for x in run.activation_layers()], run.init, run.probe.samples
    (['1', '3'], 'xavier_normal', 16)
    >>> run.activation_layers()[0].grad_std is not None
    True
    """
    if loss not in (None, "mean_square"):
        raise ConfigError(f"histogram loss must be 'mean_square' or None, got {loss!r}.")
    for name, value in (("layers", layers), ("width", width), ("samples", samples)):
        _positive(name, value)
    scheme = get(init)
    model = build_stack(activation, layers, width, bias)
    init_(model, scheme, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(input_seed(seed))
    inputs = torch.randn(samples, width, generator=g)
    report = probe(model, inputs, bins=bins, loss_fn=loss)
    return HistogramRun(
        activation=resolve(activation).spec, init=scheme.to_spec(), layers=layers, width=width,
        samples=samples, seed=seed, bias=bias, probe=report.to_record(),
    )  # fmt: skip


def histogram_grid(inits: list[str], activations: list[str], **options) -> list[HistogramRun]:
    """One :func:`histogram_experiment` per (activation, init) pair, activations outermost."""
    return [histogram_experiment(a, i, **options) for a in activations for i in inits]
