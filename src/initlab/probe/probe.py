"""``probe(model, inputs)``: what an initialization does to every layer, in one call.

Forward (and backward, when a loss is given) over one or more batches with hooks that fold
each layer's output into streaming statistics: memory is O(layers x bins), never the
activations. The model is left as it was: gradients and buffers (e.g. BatchNorm running
stats) are restored, hooks removed, even when the forward raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from initlab.errors import ConfigError
from initlab.probe.hooks import Collector, Ranges, first_tensor
from initlab.probe.jacobian import jacobian_spectrum
from initlab.probe.probe_report import ProbeReport
from initlab.probe.record import assemble

Batch = tuple[Any, Any]  # (model input, target or None)
MEAN_SQUARE = "mean_square"  # loss_fn: mean of squares of the model's main output
MODEL_LOSS = "model"  # loss_fn: the loss the model computes itself (HF: labels in the inputs)


def _rows(inputs: torch.Tensor | Mapping) -> int:
    """Examples along dim 0: of the tensor, or of the tensors of a dict of keyword inputs."""
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() else 0
    sizes = {int(v.shape[0]) for v in inputs.values() if isinstance(v, torch.Tensor) and v.dim()}
    if len(sizes) != 1:
        raise ConfigError(
            "probe inputs as a dict need tensors with the same size along dim 0 "
            f"(one row per example), got sizes {sorted(sizes)} for keys {list(inputs)}."
        )
    return sizes.pop()


def _chunks(inputs: torch.Tensor | Mapping, batches: int) -> list[Any]:
    if isinstance(inputs, torch.Tensor):
        return list(torch.chunk(inputs, batches))
    n = _rows(inputs)
    size = -(-n // batches)  # torch.chunk's rule, so that tensors and dicts split alike
    return [
        {k: v[i : i + size] if isinstance(v, torch.Tensor) and v.dim() else v
         for k, v in inputs.items()}
        for i in range(0, n, size)
    ]  # fmt: skip


def _split(inputs: Any, targets: torch.Tensor | None, batches: int) -> list[Batch]:
    n = _rows(inputs)
    if n < batches or (isinstance(inputs, torch.Tensor) and inputs.dim() == 0):
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else f"{n} rows"
        raise ConfigError(
            f"Cannot split inputs of shape {shape} into batches={batches}: "
            "give at least one example per batch along dim 0."
        )
    xs = _chunks(inputs, batches)
    if targets is None:
        return [(x, None) for x in xs]
    if not isinstance(targets, torch.Tensor) or targets.shape[0] != n:
        raise ConfigError(
            "targets must be a tensor with one row per input row "
            f"({n}), got {getattr(targets, 'shape', type(targets).__name__)}."
        )
    return list(zip(xs, torch.chunk(targets, batches), strict=True))


def _take(inputs: Iterable, batches: int) -> list[Batch]:
    out: list[Batch] = []
    for item in inputs:
        if len(out) == batches:
            break
        if isinstance(item, (tuple, list)) and len(item) == 2:
            out.append((item[0], item[1]))
        else:
            out.append((item, None))
    if not out:
        raise ConfigError("probe got an empty iterable of batches; give at least one batch.")
    return out


def _batches(inputs: Any, targets: Any, batches: int) -> list[Batch]:
    """One tensor (or dict of keyword tensors) split along dim 0, or the first ``batches``
    items of an iterable (each a tensor, a dict or an ``(input, target)`` pair, as a
    DataLoader yields)."""
    if not isinstance(batches, int) or isinstance(batches, bool) or batches < 1:
        raise ConfigError(f"batches must be a positive integer, got {batches!r}.")
    if isinstance(inputs, (torch.Tensor, Mapping)):
        return _split(inputs, targets, batches)
    if targets is not None:
        raise ConfigError(
            "targets= goes with a single input tensor; with an iterable of batches, "
            "yield (input, target) pairs instead."
        )
    if isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes)):
        return _take(inputs, batches)
    raise ConfigError(
        "probe inputs must be a tensor, a dict of keyword inputs or an iterable of batches, "
        f"got {type(inputs).__name__}."
    )


def _size(x: Any) -> int:
    if isinstance(x, Mapping):
        return _rows(x)
    return int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() > 0 else 1


def _call(model: nn.Module, x: Any) -> Any:
    if isinstance(x, Mapping):  # HF style: model(input_ids=..., attention_mask=...)
        return model(**x)
    return model(*x) if isinstance(x, tuple) else model(x)


def main_output(out: Any) -> torch.Tensor:
    """The tensor a loss is taken of: the output itself, an HF ModelOutput's ``logits`` (else
    its ``last_hidden_state``), or the first tensor of a tuple / list / dict.

    >>> main_output((torch.ones(2), "aux")).tolist()
    [1.0, 1.0]
    """
    for key in ("logits", "last_hidden_state"):
        value = out.get(key) if isinstance(out, Mapping) else None
        if isinstance(value, torch.Tensor):
            return value
    tensor = first_tensor(out)
    if tensor is None:
        raise ConfigError(
            f"The model returned a {type(out).__name__} with no tensor to take a loss of."
        )
    return tensor


def _is_model_output(out: Any) -> bool:
    """An HF ModelOutput (a dict-like with logits or last_hidden_state): a callable loss_fn
    gets its main tensor; tensors, tuples and other outputs go to it as they are."""
    return isinstance(out, Mapping) and ("logits" in out or "last_hidden_state" in out)


def _loss(loss_fn: Callable | str, out: Any, y: Any) -> torch.Tensor:
    if loss_fn == MEAN_SQUARE:
        return main_output(out).float().pow(2).mean()
    if loss_fn == MODEL_LOSS:
        loss = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
        if not isinstance(loss, torch.Tensor):
            raise ConfigError(
                "loss_fn='model' needs the model to return a loss (out.loss); for an HF model "
                "put labels= in the inputs, e.g. {'input_ids': ids, 'labels': ids}."
            )
        return loss
    out = main_output(out) if _is_model_output(out) else out
    return loss_fn(out, y) if y is not None else loss_fn(out)  # type: ignore[operator]


def probe(
    model: nn.Module,
    inputs: Any,
    *,
    targets: torch.Tensor | None = None,
    loss_fn: Callable[..., torch.Tensor] | str | None = None,
    bins: int = 30,
    batches: int = 1,
    ranges: Ranges = None,
    jacobian: bool | Mapping = False,
) -> ProbeReport:
    """Measure activations (and gradients, with ``loss_fn``) of every layer in call order.

    ``inputs`` is a tensor (float features or integer token ids), a dict of keyword inputs
    (``{"input_ids": ids}``: the model is called as ``model(**inputs)``), either split into
    ``batches`` chunks along dim 0, or an iterable of batches (tensors, dicts or
    ``(input, target)`` pairs; the first ``batches`` are used). With ``loss_fn`` each batch
    is also backpropagated: ``loss_fn(output, target)``, or ``loss_fn(output)`` when there is
    no target; an HF ModelOutput is passed as its ``logits`` (else ``last_hidden_state``).
    ``loss_fn="mean_square"`` backpropagates the mean of squares of that main output (every
    layer gets a gradient, no target needed), ``loss_fn="model"`` the model's own
    ``output.loss`` (HF: put ``labels`` in the inputs). ``ranges`` fixes histogram ranges: one
    ``(lo, hi)`` for all layers, or a dict keyed by layer name, activation name or kind
    ("linear", "conv", "activation"); otherwise bounded activations use their natural range
    and other layers a range fixed from the first batch. ``jacobian=True`` (or a dict of
    options of :func:`~initlab.probe.jacobian.jacobian_spectrum`) also measures the squared
    singular values of the input-output Jacobian at the first inputs: ``report.jacobian``.

    >>> model = nn.Sequential(nn.Linear(10, 10), nn.Sigmoid())
    >>> report = probe(model, torch.randn(64, 10, generator=torch.Generator().manual_seed(0)))
    >>> [x.name for x in report.layers], report.layer("1").histogram.lo
    (['0', '1'], 0.0)
    >>> ids = torch.randint(0, 10, (8, 5), generator=torch.Generator().manual_seed(0))
    >>> lm = nn.Sequential(nn.Embedding(10, 6), nn.Linear(6, 10))
    >>> probe(lm, ids, loss_fn="mean_square").layer("1").grad_std is not None
    True
    """
    if targets is not None and loss_fn is None:
        raise ConfigError("targets= needs loss_fn= too, e.g. loss_fn=torch.nn.functional.mse_loss.")
    if isinstance(loss_fn, str) and loss_fn not in (MEAN_SQUARE, MODEL_LOSS):
        raise ConfigError(
            f"loss_fn={loss_fn!r}: give a callable, {MEAN_SQUARE!r} or {MODEL_LOSS!r}."
        )
    if isinstance(loss_fn, str) and targets is not None:
        raise ConfigError(f"targets= goes with a callable loss_fn, not loss_fn={loss_fn!r}.")
    plan = _batches(inputs, targets, batches)
    collector = Collector(model, bins=bins, ranges=ranges)
    params = [p for p in model.parameters() if p.requires_grad]
    saved_grads = [p.grad for p in params]
    saved_buffers = [(b, b.detach().clone()) for b in model.buffers()]
    losses: list[float] = []
    samples = 0
    try:
        collector.attach()
        collector.begin()
        for x, y in plan:
            if loss_fn is None:
                with torch.no_grad():
                    _call(model, x)
            else:
                for p in params:
                    p.grad = None
                loss = _loss(loss_fn, _call(model, x), y)
                loss.backward()
                losses.append(float(loss.detach()))
            collector.end_batch()
            samples += _size(x[0] if isinstance(x, tuple) else x)
        collection = collector.close()
    finally:
        collector.remove()
        for p, g in zip(params, saved_grads, strict=True):
            p.grad = g
        with torch.no_grad():
            for b, saved in saved_buffers:
                b.copy_(saved)
    record = assemble(
        collector, collection, batches=len(plan), samples=samples,  # type: ignore[arg-type]
        loss=sum(losses) / len(losses) if losses else None,
    )  # fmt: skip
    spectrum = None
    if jacobian:
        options = dict(jacobian) if isinstance(jacobian, Mapping) else {}
        spectrum = jacobian_spectrum(model, plan[0][0], **options)
    return ProbeReport(record, jacobian=spectrum)
