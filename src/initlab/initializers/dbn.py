"""Greedy layer-wise RBM pretraining of a stack of Linear layers (Hinton et al. 2006).

Each hidden Linear layer is the hidden side of one RBM whose visible side is the layer's
input: the first RBM sees the data, each next one the hidden probabilities of the RBM
below. The trained weights and hidden biases are written into the Linear layers; the
last (output) layer is not pretrained and keeps its N(0, weight_std^2) start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from rich.progress import Progress
from torch import nn

from initlab.errors import InitSpecError
from initlab.initializers.apply import NO_GENERATOR, default_generator, init_, realized_std
from initlab.initializers.init_report import InitReport
from initlab.initializers.lsuv import forward_call_order, input_batches
from initlab.initializers.rbm import RBM, CDSettings, check_visible, train_rbm
from initlab.initializers.registry import ModelProcedure, register
from initlab.initializers.simple import Normal
from initlab.initializers.trace import find_activations


@dataclass
class DBNLayer:
    """One pretrained layer: its RBM's sizes and reconstruction error per epoch."""

    layer: str
    n_visible: int
    n_hidden: int
    visible: str
    recon_error: list[float]


@dataclass
class DBNReport:
    """What ``pretrain_dbn`` did (plain data)."""

    layers: list[DBNLayer] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what ``init_(model, "dbn")`` puts in ``report.extra["dbn"]``)."""
        return asdict(self)


def _as_matrix(data) -> tuple[torch.Tensor, torch.Tensor]:
    """All inputs as ``[N, features]`` float, and a two-sample batch in the model's shape."""
    if isinstance(data, torch.Tensor):
        batches = input_batches(data, 1, "dbn")
    else:
        batches = input_batches(data, 2**62, "dbn")
    x = torch.cat(batches) if len(batches) > 1 else batches[0]
    example = batches[0][:2]
    x = x.reshape(len(x), -1)
    return (x if x.is_floating_point() else x.float()), example


def linear_stack(model: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Linear]]:
    """The model's Linear layers in call order, checked to chain ``in -> out -> in ...``."""
    modules = dict(model.named_modules())
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        order = forward_call_order(model, example)
    finally:
        for m, flag in flags.items():
            m.training = flag
    stack = []
    for name, calls in order:
        module = modules[name]
        if not isinstance(module, nn.Linear) or calls != 1:
            what = type(module).__name__ if calls == 1 else f"a layer called {calls} times"
            raise InitSpecError(
                f"'dbn' needs a plain stack of nn.Linear layers (e.g. 784-256-256-10), but "
                f"'{name or type(model).__name__}' is {what}; use lsuv or a formula scheme."
            )
        stack.append((name, module))
    for (a, la), (b, lb) in zip(stack, stack[1:]):
        if la.out_features != lb.in_features:
            raise InitSpecError(
                f"'dbn' needs chained Linear layers, but '{a}' gives {la.out_features} features "
                f"and '{b}' takes {lb.in_features}."
            )
    if len(stack) < 2:
        raise InitSpecError(
            f"'dbn' needs at least two Linear layers (hidden + output), found {len(stack)}."
        )
    return stack


def pretrain_dbn(
    model: nn.Module,
    data,
    *,
    epochs: int = 5,
    lr: float = 0.1,
    k: int = 1,
    visible: str = "bernoulli",
    batch_size: int = 100,
    generator: torch.Generator | None = None,
    momentum: float = 0.9,
    initial_momentum: float = 0.5,
    weight_decay: float = 2e-4,
    persistent: bool = False,
    weight_std: float = 0.01,
    progress: bool = True,
) -> DBNReport:
    """Pretrain every Linear layer but the last as an RBM, greedily, and write the weights
    and hidden biases into the model in place.

    ``data``: training inputs (a tensor or an iterable of batches / (inputs, labels)),
    flattened to ``[N, in_features]``; bernoulli visible units need values in [0, 1],
    gaussian ones unit-variance data (upper layers are always bernoulli). CD-k with
    momentum and weight decay as in Hinton's guide; ``persistent`` for PCD. Every draw
    (RBM init, shuffling, sampling) comes from ``generator`` (``None``: a generator seeded 0,
    as in ``init_``, and the report's notes say so).

    >>> net = nn.Sequential(nn.Linear(6, 4), nn.Sigmoid(), nn.Linear(4, 2))
    >>> x = torch.rand(64, 6, generator=torch.Generator().manual_seed(1)).round()
    >>> rep = pretrain_dbn(net, x, epochs=2, lr=0.1, batch_size=16,
    ...                    generator=torch.Generator().manual_seed(0), progress=False)
    >>> [layer.layer for layer in rep.layers], len(rep.layers[0].recon_error)
    (['0'], 2)
    """
    check_visible(visible)
    settings = CDSettings(epochs, lr, k, batch_size, momentum, initial_momentum, weight_decay,
                          persistent)  # fmt: skip
    x, example = _as_matrix(data)
    stack = linear_stack(model, example)
    if x.shape[1] != stack[0][1].in_features:
        raise InitSpecError(
            f"'dbn' data has {x.shape[1]} features per sample but the first Linear layer "
            f"'{stack[0][0]}' takes {stack[0][1].in_features}."
        )
    if visible == "bernoulli" and (float(x.min()) < 0 or float(x.max()) > 1):
        raise InitSpecError(
            f"'dbn' bernoulli visible units need data in [0, 1], got {float(x.min()):.3g}.."
            f"{float(x.max()):.3g}; rescale it or use visible=gaussian on standardized data."
        )
    report = DBNReport(settings={**asdict(settings), "visible": visible, "weight_std": weight_std})
    if generator is None:
        generator = default_generator()
        report.notes.append(NO_GENERATOR)
    report.notes.extend(_activation_notes(model, example, stack))

    with Progress(disable=not progress, transient=False) as bar:
        for name, layer in stack[:-1]:
            x = x.to(device=layer.weight.device, dtype=layer.weight.dtype)
            label = f"dbn {name}: {layer.in_features}->{layer.out_features}"
            task = bar.add_task(label, total=settings.epochs * -(-len(x) // batch_size))

            def show(epoch: int, error: float, task=task, label=label) -> None:
                bar.update(task, advance=1, description=f"{label} recon {error:.4f}")

            rbm = RBM.for_data(layer.out_features, x, visible, generator, weight_std)
            errors = train_rbm(rbm, x, settings, generator, on_batch=show)
            _write(layer, rbm, name, report)
            report.layers.append(
                DBNLayer(name, layer.in_features, layer.out_features, visible, errors)
            )
            with torch.no_grad():
                x = rbm.hidden_prob(x)  # the next RBM's data: hidden probabilities
            visible = "bernoulli"
    return report


def _write(layer: nn.Linear, rbm: RBM, name: str, report: DBNReport) -> None:
    with torch.no_grad():
        layer.weight.copy_(rbm.weight)
        if layer.bias is not None:
            layer.bias.copy_(rbm.hidden_bias)
        else:
            report.notes.append(f"dbn: layer {name} has no bias; its RBM hidden bias is dropped")


def _activation_notes(model, example, stack) -> list[str]:
    found, _ = find_activations(model, example)
    notes = []
    for name, _layer in stack[:-1]:
        act = found.get(name)
        act_name = act.activation.name if act is not None and act.activation else "none"
        if act_name != "sigmoid":
            notes.append(
                f"dbn: the model applies {act_name} after layer {name}; RBM features are "
                "sigmoid probabilities, so the pretrained weights fit sigmoid units best"
            )
    return notes


@register("dbn")
@dataclass(frozen=True)
class DBN(ModelProcedure):
    """Greedy RBM pretraining of the hidden Linear layers (see :func:`pretrain_dbn`); every
    other parameter (and the output layer) starts N(0, weight_std^2), biases zero."""

    formula = "greedy CD-k RBM pretraining per hidden Linear layer; output layer N(0, 0.01^2)"
    needs_data = True
    epochs: int = 5
    lr: float = 0.1
    k: int = 1
    visible: str = "bernoulli"
    batch_size: int = 100
    momentum: float = 0.9
    initial_momentum: float = 0.5
    weight_decay: float = 0.0002
    persistent: bool = False
    weight_std: float = 0.01
    progress: bool = True

    def __post_init__(self) -> None:
        check_visible(self.visible)
        if not self.weight_std > 0:
            raise InitSpecError(f"'dbn' weight_std must be > 0, got {self.weight_std}.")
        CDSettings(self.epochs, self.lr, self.k, self.batch_size, self.momentum,
                   self.initial_momentum, self.weight_decay, self.persistent)  # fmt: skip

    def apply(
        self, model: nn.Module, *, data, generator: torch.Generator, bias=None, rules=None,
        example_input=None,
    ) -> InitReport:  # fmt: skip
        """N(0, weight_std^2) everywhere, then :func:`pretrain_dbn`; ``extra["dbn"]`` holds
        the DBNReport as a dict."""
        # materialize once (a one-shot iterator must feed both checks and training) and
        # check the model before anything is drawn
        batches = input_batches(data, 1 if isinstance(data, torch.Tensor) else 2**62, "dbn")
        linear_stack(model, batches[0][:2])
        report = init_(model, Normal(std=self.weight_std), generator=generator, bias=bias,
                       rules=rules)  # fmt: skip
        dbn = pretrain_dbn(
            model, batches, epochs=self.epochs, lr=self.lr, k=self.k, visible=self.visible,
            batch_size=self.batch_size, generator=generator, momentum=self.momentum,
            initial_momentum=self.initial_momentum, weight_decay=self.weight_decay,
            persistent=self.persistent, weight_std=self.weight_std, progress=self.progress,
        )  # fmt: skip
        modules = dict(model.named_modules())
        for layer in dbn.layers:
            for row in report.rows:
                if row.name in (f"{layer.layer}.weight", f"{layer.layer}.bias"):
                    param = modules[layer.layer].get_parameter(row.name.rsplit(".", 1)[1])
                    row.scheme, row.target_std = self.to_spec(), None
                    row.realized_std = realized_std(param)
            err = layer.recon_error
            report.notes.append(
                f"dbn: layer {layer.layer} ({layer.n_visible}->{layer.n_hidden}, {layer.visible}) "
                f"reconstruction error {err[0]:.4f} -> {err[-1]:.4f} over {len(err)} epochs"
            )
        report.notes.extend(dbn.notes)
        report.extra["dbn"] = dbn.to_dict()
        return report
