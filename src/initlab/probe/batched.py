"""Many layers' statistics in a few kernels: how ``watch`` folds a sampled step.

On a small model the per-tensor path (:meth:`OutputStats.update`, :meth:`GradStats.update`)
spends its time launching some 25 reductions per layer on ~10^4 numbers each, not computing.
Here the outputs (or the gradients) of one step are grouped by shape, each group is stacked
into one ``(layers, rows, units)`` tensor, and every statistic is one reduction over that
tensor (a 784-100x4-10 MLP has two groups of outputs); histogram bins, saturated and dead
entries are counted for all layers at once with one ``bincount`` each.

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
    """Indices of the blocks of each shape and their stack (layers, rows, units), float64."""
    order = sorted(range(len(blocks)), key=lambda k: blocks[k].shape)
    out = []
    for _, members in groupby(order, key=lambda k: blocks[k].shape):
        ks = list(members)
        out.append((ks, torch.stack([blocks[k] for k in ks]).to(torch.float64)))
    return out


def _moments(groups, n: int) -> tuple[list[float], ...]:
    """Per block: mean, population variance (two passes), min, max; in block order."""
    mean, var, lo, hi = ([0.0] * n for _ in range(4))
    for ks, d in groups:
        m = d.mean(dim=(1, 2))
        v = (d - m[:, None, None]).square_().mean(dim=(1, 2))
        flat = d.reshape(len(ks), -1)
        values = zip(m.tolist(), v.tolist(), flat.amin(1).tolist(), flat.amax(1).tolist(),
                     strict=True)  # fmt: skip
        for k, (a, b, c, e) in zip(ks, values, strict=True):
            mean[k], var[k], lo[k], hi[k] = a, b, c, e
    return mean, var, lo, hi


def _counts(x: torch.Tensor, seg: torch.Tensor, n: int, bins: int, lo, hi, low, high):
    """Per block: histc-style bin counts, underflow, overflow, then saturated and dead."""
    left, right = lo[seg], hi[seg]
    pos = ((x - left) * bins / (right - left)).long().clamp_(0, bins - 1)
    code = torch.where(x < left, bins, torch.where(x > right, bins + 1, pos))
    code = torch.where((x <= low[seg]) | (x >= high[seg]), code + (bins + 2) * n, code)
    width = bins + 2
    counts = torch.bincount(seg * width + code, minlength=2 * n * width).view(2, n, width)
    dead = torch.bincount(seg[x <= 0], minlength=n)
    hist = (counts[0] + counts[1]).tolist()  # the second half: entries near a bound
    return hist, counts[1].sum(1).tolist(), dead.tolist()


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
    x = torch.cat([b.reshape(-1) for b in blocks])
    if not bool(torch.isfinite(x).all()):  # counts and drops non-finite values per tensor
        for stats, y in zip(kept, blocks, strict=True):
            stats.update(y)
        return
    n = len(blocks)
    numels = [b.numel() for b in blocks]
    offsets = np.cumsum([0, *numels])
    for k, stats in enumerate(kept):
        if stats.histogram is None:  # the range is fixed from the first batch
            span = stats.fixed_range or auto_range(x[offsets[k] : offsets[k + 1]], stats.activation)
            stats.histogram = FixedHistogram(*span, stats.bins)
    groups = _groups(blocks)
    mean, var, lo, hi = _moments(groups, n)
    within = [0.0] * n
    for ks, d in groups:
        rows = (d - d.mean(dim=2, keepdim=True)).square_().mean(dim=2).sum(dim=1)
        for k, w in zip(ks, rows.tolist(), strict=True):
            within[k] = w
    seg = torch.repeat_interleave(torch.arange(n), torch.tensor(numels))
    inf = math.inf
    bounds = [st.bounded for st in kept]
    hist, saturated, dead = _counts(
        x, seg, n, kept[0].bins,
        torch.tensor([st.histogram.lo for st in kept], dtype=x.dtype),
        torch.tensor([st.histogram.hi for st in kept], dtype=x.dtype),
        torch.tensor([b[0] + SATURATION_MARGIN if b else -inf for b in bounds], dtype=x.dtype),
        torch.tensor([b[1] - SATURATION_MARGIN if b else inf for b in bounds], dtype=x.dtype),
    )  # fmt: skip
    alive = _alive([(k, blocks[k]) for k, st in enumerate(kept) if st.relu])
    for k, stats in enumerate(kept):
        rows, units = blocks[k].shape
        stats.units = units
        if k in alive:
            stats.alive = (stats.alive or 0) | alive[k]
        stats.moments.merge_values(rows * units, mean[k], var[k], lo[k], hi[k])
        if rows > 1 and units > 1:
            stats.within_var_sum += within[k]
            stats.examples += rows
        stats.histogram.add_counts(hist[k])
        if stats.bounded is not None:
            stats.saturated += saturated[k]
        if stats.relu:
            stats.dead += dead[k]


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
    if not items:
        return
    blocks = [g.detach().float().reshape(1, 1, -1)[0] for _, g in items]
    groups = _groups(blocks)
    mean, var, lo, hi = _moments(groups, len(blocks))
    squares = [0.0] * len(blocks)
    for ks, d in groups:
        for k, sq in zip(ks, d.square().sum(dim=(1, 2)).tolist(), strict=True):
            squares[k] = sq
    for k, (stats, _) in enumerate(items):
        stats.moments.merge_values(blocks[k].numel(), mean[k], var[k], lo[k], hi[k])
        stats.sq_norms += squares[k]
        stats.batches += 1
