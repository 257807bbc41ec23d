"""Turn a closed collection (hooks' accumulators) into a plain :class:`ProbeRecord`.

Adds what the hooks do not see batch by batch: weight statistics (std, identical rows),
the mean-field prediction along the chain of leaf calls, and the diagnosis.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from initlab.initializers.fans import is_hf_conv1d
from initlab.probe.diagnose import diagnose
from initlab.probe.predict import chain_steps, predict_stack
from initlab.results.probe_records import LayerStats, ProbeRecord, WeightGrad

if TYPE_CHECKING:  # hooks.py imports this module; the types are only for readers
    from initlab.probe.hooks import Collection, Collector


def _weight_facts(module: nn.Module) -> tuple[float | None, bool | None]:
    """(std of the weight entries, whether every output unit's weights are identical)."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
        return None, None
    w = weight.detach()
    transposed = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    if isinstance(module, transposed) or is_hf_conv1d(module):
        w = w.transpose(0, 1)  # [in, out, ...]: output units are along dim 1
    rows = w.reshape(w.shape[0], -1)
    rows = rows if rows.dtype == torch.float32 else rows.float()
    if rows.shape[0] < 2:
        return float(rows.std(correction=0)), None
    # column-wise max - min over the units: reductions only, no copy of the weight; the
    # largest |w| is the larger of max w and -min w; one read-back for all four numbers
    hi, lo = rows.amax(dim=0), rows.amin(dim=0)
    numbers = torch.stack([rows.std(correction=0), (hi - lo).max(), hi.max(), lo.min()])
    std, spread, top, bottom = numbers.tolist()
    return std, bool(spread <= 1e-6 * max(top, -bottom))


Prediction = tuple[dict[str, tuple[float, float, float]], str | None]


def predict(collection: Collection) -> Prediction:
    """The mean-field prediction along the collection's chain of leaf calls: layer name ->
    (variance, lower, upper), and the note saying where the chain stopped (or None)."""
    steps, stop = chain_steps(collection.calls)
    m2 = collection.input_m2.mean if collection.input_m2.count else 1.0
    out = {p.name: (p.variance, p.lower, p.upper)
           for p in predict_stack(steps, input_second_moment=m2) if math.isfinite(p.variance)}  # fmt: skip
    return out, stop or None


def assemble(
    collector: Collector,
    collection: Collection,
    *,
    step: int | None = None,
    loss: float | None = None,
    batches: int = 1,
    samples: int = 0,
    prediction: Prediction | None = None,
) -> ProbeRecord:
    """Build the record of one collection: stats in call order, predictions, findings.

    ``prediction`` (from :func:`predict`) is used instead of computing one: ``watch`` reuses
    the one of its first sampled step, the mean-field prediction at init."""
    layers: list[LayerStats] = []
    for index, name in enumerate(collection.order):
        slot = collector.slots[name]
        stats = LayerStats(
            name=name,
            kind=slot.kind,
            module=type(slot.module).__name__,
            index=index,
            activation=slot.activation.spec if slot.activation else None,
            **(slot.out.summary() if slot.out else {}),
        )
        if slot.grad is not None and slot.grad.batches:
            stats.grad_std, stats.grad_norm = slot.grad.std, slot.grad.norm
        if slot.kind in ("linear", "conv"):  # blocks have no one weight to describe
            stats.weight_std, stats.weight_rows_identical = _weight_facts(slot.module)
        layers.append(stats)

    predicted, stop = prediction if prediction is not None else predict(collection)
    notes = [stop] if stop else []
    for x in layers:
        if x.name in predicted:
            x.predicted_var, x.predicted_lower, x.predicted_upper = predicted[x.name]

    grads = []
    for name, g in collection.weight_grads.items():
        layer = name[: -len(".weight")] if name.endswith(".weight") else ""
        module = collector.slots[layer].module if layer in collector.slots else None
        shape = list(module.weight.shape) if module is not None else []
        grads.append(WeightGrad(name, layer, shape, g.std or 0.0, g.norm or 0.0))
    order = {name: i for i, name in enumerate(collection.order)}
    grads.sort(key=lambda g: order.get(g.layer, len(order)))

    record = ProbeRecord(
        layers=layers, weight_grads=grads, notes=notes, batches=batches,
        samples=samples, loss=loss, step=step,
    )  # fmt: skip
    record.findings = diagnose(record)
    return record
