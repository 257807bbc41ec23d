"""Many layers' statistics in a few kernels: how ``watch`` folds a sampled step.

On a small model the per-tensor path (:meth:`OutputStats.update`, :meth:`GradStats.update`)
spends its time launching some 25 reductions per layer on ~10^4 numbers each, not computing.
Here the outputs (or the gradients) of one step are grouped by shape, each group is stacked
into one ``(layers, rows, units)`` tensor, and every statistic is one reduction over that
tensor (a 784-100x4-10 MLP has two groups of outputs); the histograms of a group are one
``bincount``. The element-wise work stays (a few passes over every output and gradient),
which is what a sampled step still costs: about 4x a plain step of that MLP.

The results equal the per-tensor path's up to float64 summation order (moments and
within-example variances are two-pass float64), and histogram bins are found exactly as
``torch.histc`` finds them: the float32 linear position, the top edge in the last bin
(checked value by value against it, edges included). Tensors holding a non-finite value go
through the per-tensor path, which counts and drops such values.

>>> from initlab.probe.stats import OutputStats
>>> a, b = OutputStats(None, 4, (-2.0, 2.0)), OutputStats(None, 4, (-2.0, 2.0))
>>> y = torch.tensor([[0.5, -1.0], [1.5, 3.0]])
>>> fold_outputs([(a, y)]); b.update(y)
>>> a.summary()["histogram"].counts == b.summary()["histogram"].counts, a.moments.mean
(True, 1.0)
"""

from __future__ import annotations

import math
from itertools import groupby

import numpy as np
import torch

from initlab.probe.stats import (
    SATURATION_MARGIN,
    FixedHistogram,
    GradStats,
    OutputStats,
    auto_range,
)


def _groups(blocks: list[torch.Tensor]) -> list[tuple[list[int], torch.Tensor]]:
    """Indices of the blocks of each shape and their stack (layers, rows, units), float32."""
    order = sorted(range(len(blocks)), key=lambda k: blocks[k].shape)
    return [(ks, torch.stack([blocks[k] for k in ks]))
            for ks in (list(g) for _, g in groupby(order, key=lambda k: blocks[k].shape))]  # fmt: skip


def _moments(d: torch.Tensor) -> list[list[float]]:
    """Per layer of a float64 stack: mean, population variance (two passes), min, max."""
    m = d.mean(dim=(1, 2))
    v = (d - m[:, None, None]).square_().mean(dim=(1, 2))
    flat = d.reshape(len(d), -1)
    return [m.tolist(), v.tolist(), flat.amin(1).tolist(), flat.amax(1).tolist()]


def _column(values: list[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype).view(-1, 1, 1)


def _histograms(x: torch.Tensor, hists: list[FixedHistogram]) -> list[list[int]]:
    """Per layer of a float32 stack: histc-style bin counts, then underflow and overflow."""
    bins = hists[0].bins
    lo, hi = _column([h.lo for h in hists], x), _column([h.hi for h in hists], x)
    # histc's own rule (checked value by value against it, edges included): the float32
    # linear position, the top edge in the last bin
    pos = ((x - lo) * bins / (hi - lo)).long().clamp_(0, bins - 1)
    code = torch.where(x < lo, bins, torch.where(x > hi, bins + 1, pos))
    code += (torch.arange(len(hists)) * (bins + 2)).view(-1, 1, 1)
    counts = torch.bincount(code.reshape(-1), minlength=len(hists) * (bins + 2))
    return counts.view(len(hists), bins + 2).tolist()


def fold_outputs(items: list[tuple[OutputStats, torch.Tensor]]) -> None:
    """``stats.update(y)`` for every pair, computed together (all ``stats`` with one bin count)."""
    kept, blocks = [], []
    for stats, y in items:
        y = y.detach()
        y = y.reshape(y.shape[0], -1) if y.dim() >= 2 else y.reshape(1, -1)
        if y.numel() == 0 or y.dtype == torch.float64:  # rare: the per-tensor path
            stats.update(y)
            continue
        kept.append(stats)
        blocks.append(y.float())
    if not blocks:
        return
    groups = _groups(blocks)
    if not all(bool(torch.isfinite(x).all()) for _, x in groups):
        for stats, y in zip(kept, blocks, strict=True):  # counts and drops non-finite values
            stats.update(y)
        return
    for stats, y in zip(kept, blocks, strict=True):
        if stats.histogram is None:  # the range is fixed from the first batch
            span = stats.fixed_range or auto_range(y.reshape(-1), stats.activation)
            stats.histogram = FixedHistogram(*span, stats.bins)
    alive = _alive([(k, blocks[k]) for k, st in enumerate(kept) if st.relu])
    for ks, x in groups:
        members = [kept[k] for k in ks]
        d = x.to(torch.float64)
        moments = zip(*_moments(d), strict=True)
        within = (d - d.mean(dim=2, keepdim=True)).square_().mean(dim=2).sum(dim=1).tolist()
        del d
        hist = _histograms(x, [st.histogram for st in members])
        dead = (x <= 0).sum(dim=(1, 2)).tolist()
        bounds = [st.bounded or (-math.inf, math.inf) for st in members]
        low = _column([b[0] + SATURATION_MARGIN for b in bounds], x)
        high = _column([b[1] - SATURATION_MARGIN for b in bounds], x)
        saturated = ((x <= low) | (x >= high)).sum(dim=(1, 2)).tolist()
        rows, units = x.shape[1:]
        for j, (k, stats, (m, v, a, b)) in enumerate(zip(ks, members, moments, strict=True)):
            stats.units = units
            if k in alive:
                stats.alive = (stats.alive or 0) | alive[k]
            stats.moments.merge_values(rows * units, m, v, a, b)
            if rows > 1 and units > 1:
                stats.within_var_sum += within[j]
                stats.examples += rows
            stats.histogram.add_counts(hist[j])
            if stats.bounded is not None:
                stats.saturated += saturated[j]
            if stats.relu:
                stats.dead += dead[j]


def _alive(relu: list[tuple[int, torch.Tensor]]) -> dict[int, int]:
    """Per ReLU block: the bits of the units positive on some example (as OutputStats)."""
    if not relu:
        return {}
    ever = torch.cat([(b > 0).any(dim=0) for _, b in relu]).numpy()
    cuts = np.cumsum([0] + [b.shape[1] for _, b in relu])
    return {k: int.from_bytes(np.packbits(ever[cuts[j] : cuts[j + 1]]).tobytes(), "big")
            for j, (k, _) in enumerate(relu)}  # fmt: skip


def fold_grads(items: list[tuple[GradStats, torch.Tensor]]) -> None:
    """``stats.update(g)`` for every pair, computed together."""
    blocks = [g.detach().float().reshape(1, -1) for _, g in items]
    for ks, x in _groups(blocks):
        d = x.to(torch.float64)
        squares = d.square().sum(dim=(1, 2)).tolist()
        for j, (k, (m, v, a, b)) in enumerate(zip(ks, zip(*_moments(d), strict=True), strict=True)):
            stats = items[k][0]
            stats.moments.merge_values(x.shape[2], m, v, a, b)
            stats.sq_norms += squares[j]
            stats.batches += 1
