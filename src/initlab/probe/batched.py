"""Many layers' statistics in a few kernels: how ``watch`` folds a sampled step.

On a small model the per-tensor path (:meth:`OutputStats.update`, :meth:`GradStats.update`)
spends its time launching some 25 reductions per layer on ~10^4 numbers each, not computing.
Here the outputs (or the gradients) of one step are grouped by shape, each group is stacked
into one ``(layers, rows, units)`` tensor, and every statistic is one reduction over that
tensor (a 784-100x4-10 MLP has two groups of outputs); the histograms of a group are one
``bincount``, its automatic ranges one top-k per tail. Within a stack the layers are sorted
by kind, so what only ReLUs (dead units) or bounded activations (saturation) need is taken
on a slice, not a gathered copy. What is left is a few passes over every output and
gradient and some 100 kernel launches: about 3x a plain step of that MLP.

The results equal the per-tensor path's up to float64 rounding (moments are two-pass
float64; a row's variance across units is taken about the layer mean, see :func:`_moments`),
and histogram bins are found exactly as ``torch.histc`` finds them: the float32 linear
position, the top edge in the last bin (checked value by value against it, edges included).
Tensors holding a non-finite value go through the per-tensor path, which counts and drops
such values.

>>> from initlab.probe.stats import OutputStats
>>> a, b = OutputStats(None, 4, (-2.0, 2.0)), OutputStats(None, 4, (-2.0, 2.0))
>>> y = torch.tensor([[0.5, -1.0], [1.5, 3.0]])
>>> fold_outputs([(a, y)]); b.update(y)
>>> a.summary()["histogram"].counts == b.summary()["histogram"].counts, a.moments.mean
(True, 1.0)
"""

from __future__ import annotations

from itertools import groupby

import numpy as np
import torch

from initlab.probe.stats import (
    SATURATION_MARGIN,
    FixedHistogram,
    GradStats,
    OutputStats,
    quantile_sample,
    span_from_tails,
    tail_ranks,
)


def _plain(x: torch.Tensor) -> torch.Tensor:
    """``x`` detached and in float32, without a call for what it is already: a sampled step
    folds some 25 tensors, and each no-op call costs a dispatch. (The stacks are float32:
    their float64 copies are then always copies, safe to centre in place.)"""
    if x.requires_grad:
        x = x.detach()
    return x if x.dtype == torch.float32 else x.float()


def _groups(blocks: list[torch.Tensor], kinds: list[tuple] | None = None):
    """Indices of the blocks of each shape and their stack (layers, rows, units), float32.

    Within a group the blocks are ordered by ``kinds`` (one sortable tuple per block), so
    blocks of one kind are adjacent and a statistic that only some kinds need is taken on
    a slice of the stack (a view) instead of a gathered copy."""
    kinds = kinds or [()] * len(blocks)
    order = sorted(range(len(blocks)), key=lambda k: (tuple(blocks[k].shape), kinds[k]))
    shape_of = lambda k: blocks[k].shape  # noqa: E731
    groups = [list(g) for _, g in groupby(order, key=shape_of)]
    return [(ks, torch.stack([blocks[k] for k in ks]) if len(ks) > 1 else blocks[ks[0]][None])
            for ks in groups]  # fmt: skip


def _runs(flags: list[bool]) -> list[slice]:
    """The slices of adjacent True entries of ``flags`` (blocks of one kind are adjacent,
    so a statistic only some kinds need usually takes one slice)."""
    runs, start = [], None
    for j, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = j
        elif not flag and start is not None:
            runs.append(slice(start, j))
            start = None
    return runs


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per layer of a float32 stack (layers, rows, units): (mean, population variance, and
    per row: variance across the units), float64. Two passes about the layer mean; a row's
    variance is its mean square about the layer mean less its offset squared, as exact as
    two passes unless a row sits some 10^4 of its spreads away from the layer mean."""
    d = x.to(torch.float64)
    m = d.mean(dim=(1, 2))
    d -= m.view(-1, 1, 1)
    offset = d.mean(dim=2)
    square = d.square_().mean(dim=2)
    return m, square.mean(dim=1), square.sub_(offset.square_())


def _column(values: list[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype).view(-1, 1, 1)


def _histograms(x, hists: list[FixedHistogram], lows: list[float], highs: list[float]):
    """Per layer of a float32 stack: histc-style bin counts, then underflow and overflow.

    ``lows`` / ``highs``: each layer's min and max, which tell whether any value lies
    outside its range (rare once a range is picked) and needs counting apart."""
    bins, layers = hists[0].bins, len(hists)
    lo, hi = _column([h.lo for h in hists], x), _column([h.hi for h in hists], x)
    # histc's own rule (checked value by value against it, edges included): the float32
    # linear position, the top edge in the last bin; a value below the range lands in the
    # first bin and one above it in the last (positions are monotone in the value), and is
    # taken out of them again below
    pos = ((x - lo) * bins / (hi - lo)).clamp_(0, bins - 1).int()
    pos += torch.arange(0, layers * bins, bins, dtype=torch.int32).view(-1, 1, 1)
    counts = torch.bincount(pos.view(-1), minlength=layers * bins).view(layers, bins).tolist()
    under = [0] * layers
    over = [0] * layers
    if any(a < h.lo for a, h in zip(lows, hists, strict=True)):
        under = (x < lo).sum(dim=(1, 2)).tolist()
    if any(b > h.hi for b, h in zip(highs, hists, strict=True)):
        over = (x > hi).sum(dim=(1, 2)).tolist()
    for row, u, o in zip(counts, under, over, strict=True):
        row[0] -= u
        row[-1] -= o
        row += [u, o]
    return counts


def _pick_ranges(x: torch.Tensor, members: list[OutputStats]) -> None:
    """Fix the histogram range of the members that have none, from this batch. Those that
    need an automatic one (adjacent in the stack) share a top-k: the same order statistics
    as :func:`~initlab.probe.stats.auto_range`, ReLUs (adjacent too) needing no low one."""
    for stats in members:
        if stats.histogram is None and stats.fixed_range:
            stats.histogram = FixedHistogram(*stats.fixed_range, stats.bins)
    for auto in _runs([stats.histogram is None for stats in members]):
        flat = quantile_sample(x[auto].reshape(auto.stop - auto.start, -1))
        picked = members[auto]
        k, j = tail_ranks(flat.shape[1])
        highs = torch.topk(flat, k, dim=1).values[:, -1].tolist()
        lows = [0.0] * len(picked)
        for signed in _runs([not stats.relu for stats in picked]):
            low = torch.topk(flat[signed], j, dim=1, largest=False).values[:, -1]
            lows[signed] = low.tolist()
        for stats, lo, hi in zip(picked, lows, highs, strict=True):
            stats.histogram = FixedHistogram(*span_from_tails(lo, hi, stats.relu), stats.bins)


def _kind(stats: OutputStats) -> tuple:
    """How a layer's block is placed in its stack: ReLUs together, bounded ones together,
    and within each those needing an automatic range together."""
    auto = stats.histogram is None and not stats.fixed_range
    return stats.relu, stats.bounded is not None, not auto


def fold_outputs(items: list[tuple[OutputStats, torch.Tensor]]) -> None:
    """``stats.update(y)`` for every pair, computed together (all ``stats`` with one bin count)."""
    kept, blocks = [], []
    for stats, y in items:
        y = y.reshape(y.shape[0], -1) if y.dim() >= 2 else y.reshape(1, -1)
        if y.numel() == 0 or y.dtype == torch.float64:  # rare: the per-tensor path
            stats.update(y)
            continue
        y = _plain(y)
        kept.append(stats)
        blocks.append(y)
    if not blocks:
        return
    groups = _groups(blocks, [_kind(stats) for stats in kept])
    # a float32 sum is finite when every value is (a huge finite one overflowing it only
    # sends the batch down the slower, equally exact, per-tensor path)
    if not all(bool(torch.isfinite(x.sum(dim=(1, 2))).all()) for _, x in groups):
        for stats, y in zip(kept, blocks, strict=True):  # counts and drops non-finite values
            stats.update(y)
        return
    for ks, x in groups:
        _fold_stack(x, [kept[k] for k in ks])


def _fold_stack(x: torch.Tensor, members: list[OutputStats]) -> None:
    """Fold a stack of same-shaped finite outputs into its members' statistics."""
    _pick_ranges(x, members)
    flat = x.view(len(x), -1)
    lows, highs = flat.amin(dim=1).tolist(), flat.amax(dim=1).tolist()
    means, variances, within = _moments(x)
    moments = zip(means.tolist(), variances.tolist(), lows, highs, strict=True)
    within = within.sum(dim=1).tolist()
    hist = _histograms(x, [stats.histogram for stats in members], lows, highs)
    dead, alive, saturated = [0] * len(x), [None] * len(x), [0] * len(x)
    for relu in _runs([stats.relu for stats in members]):
        part = x[relu]
        dead[relu] = (part <= 0).sum(dim=(1, 2)).tolist()
        ever = (part.amax(dim=1) > 0).numpy()  # a unit positive on some example
        alive[relu] = [int.from_bytes(np.packbits(e).tobytes(), "big") for e in ever]
    for bounded in _runs([stats.bounded is not None for stats in members]):
        part, ends = x[bounded], [stats.bounded for stats in members[bounded]]
        low = _column([lo + SATURATION_MARGIN for lo, _ in ends], x)
        high = _column([hi - SATURATION_MARGIN for _, hi in ends], x)
        saturated[bounded] = ((part <= low) | (part >= high)).sum(dim=(1, 2)).tolist()
    rows, units = x.shape[1:]
    for j, (stats, (m, v, a, b)) in enumerate(zip(members, moments, strict=True)):
        stats.units = units
        if alive[j] is not None:
            stats.alive = (stats.alive or 0) | alive[j]
        stats.moments.merge_values(rows * units, m, v, a, b)
        if rows > 1 and units > 1:
            stats.within_var_sum += within[j]
            stats.examples += rows
        stats.histogram.add_counts(hist[j])
        stats.saturated += saturated[j]
        stats.dead += dead[j]


def fold_grads(items: list[tuple[GradStats, torch.Tensor]]) -> None:
    """``stats.update(g)`` for every pair, computed together."""
    blocks = [_plain(g).reshape(1, -1) for _, g in items]
    for ks, x in _groups(blocks):
        n = x.shape[2]
        flat = x.view(len(x), -1)
        d = flat.to(torch.float64)
        m = d.mean(dim=1)
        d -= m[:, None]
        v = d.square_().mean(dim=1)
        stack = torch.stack([m, v, flat.amin(dim=1).double(), flat.amax(dim=1).double()])
        for k, (m, v, lo, hi) in zip(ks, zip(*stack.tolist(), strict=True), strict=True):
            stats = items[k][0]
            stats.moments.merge_values(n, m, v, lo, hi)
            stats.sq_norms += n * (v + m * m)  # the sum of squares, from the two moments
            stats.batches += 1
