"""The batched fold (watch's sampled steps) against the per-tensor path as the oracle."""

from __future__ import annotations

import math

import pytest
import torch

from initlab.activations import resolve
from initlab.probe.batched import fold_grads, fold_outputs
from initlab.probe.stats import GradStats, OutputStats

LAYERS = [  # (activation, fixed range, rows, units, how the values are made)
    (None, None, 64, 100, lambda g: 3 * torch.randn(64, 100, generator=g) + 1),
    ("relu", None, 64, 100, lambda g: torch.relu(torch.randn(64, 100, generator=g))),
    ("tanh", None, 64, 30, lambda g: torch.tanh(2 * torch.randn(64, 30, generator=g))),
    ("sigmoid", None, 32, 7, lambda g: torch.sigmoid(4 * torch.randn(32, 7, generator=g))),
    (None, (-0.5, 0.5), 16, 1, lambda g: torch.randn(16, 1, generator=g)),  # under/overflow
    ("relu", None, 1, 50, lambda g: torch.relu(torch.randn(1, 50, generator=g))),  # one row
]


def _pairs():
    out = []
    for act, fixed, *_ in LAYERS:
        a = resolve(act) if act else None
        out.append((OutputStats(a, 20, fixed), OutputStats(a, 20, fixed)))
    return out


def test_fold_outputs_equals_update_over_several_steps(gen):
    pairs = _pairs()
    for _ in range(3):  # the histogram range is fixed from the first step, then reused
        ys = [make(gen) for *_, make in LAYERS]
        fold_outputs([(batched, y) for (batched, _), y in zip(pairs, ys, strict=True)])
        for (_, oracle), y in zip(pairs, ys, strict=True):
            oracle.update(y)
    for batched, oracle in pairs:
        got, want = batched.summary(), oracle.summary()
        assert got.pop("histogram") == want.pop("histogram")  # bins as torch.histc puts them
        for key, value in want.items():
            if isinstance(value, float) and math.isfinite(value):
                assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
            else:
                assert got[key] == value, key


def test_values_on_the_bin_edges_fall_where_histc_puts_them():
    edges = torch.linspace(-1.0, 1.0, 11)
    y = torch.cat([edges, edges + 1e-7, edges - 1e-7, torch.tensor([2.0, -2.0])]).reshape(1, -1)
    a, b = OutputStats(None, 10, (-1.0, 1.0)), OutputStats(None, 10, (-1.0, 1.0))
    fold_outputs([(a, y)])
    b.update(y)
    assert a.histogram.counts == b.histogram.counts
    assert (a.histogram.underflow, a.histogram.overflow) == (b.histogram.underflow,
                                                             b.histogram.overflow)  # fmt: skip


def test_non_finite_values_go_through_the_per_tensor_path(gen):
    y = torch.randn(8, 5, generator=gen)
    y[0, 0], y[1, 1] = math.nan, math.inf
    a, b = OutputStats(None, 10, None), OutputStats(None, 10, None)
    fold_outputs([(a, y)])
    b.update(y)
    assert a.summary() == b.summary() and a.nonfinite == 2


def test_fold_grads_equals_update(gen):
    grads = [torch.randn(100, 784, generator=gen) * 1e-3, torch.randn(10, generator=gen),
             torch.randn(64, 3, 3, generator=gen)]  # fmt: skip
    batched, oracle = [GradStats() for _ in grads], [GradStats() for _ in grads]
    for _ in range(2):
        fold_grads(list(zip(batched, grads, strict=True)))
        for o, g in zip(oracle, grads, strict=True):
            o.update(g)
    for a, b in zip(batched, oracle, strict=True):
        assert a.batches == b.batches == 2
        assert a.std == pytest.approx(b.std, rel=1e-12)
        assert a.norm == pytest.approx(b.norm, rel=1e-6)  # the oracle squares in float32
        assert (a.moments.min, a.moments.max) == (b.moments.min, b.moments.max)


def test_same_shaped_layers_of_mixed_kinds_share_a_stack(gen):
    # one stack holds ReLUs, bounded, fixed-range and plain layers: each statistic only
    # some kinds need is taken on the runs of that kind, the rest must not leak into it
    kinds = [("relu", None), (None, None), ("tanh", None), (None, (-1.0, 1.0)),
             ("relu", (0.0, 2.0)), ("sigmoid", None), (None, None), ("relu", None)]  # fmt: skip
    make = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, None: lambda x: x}
    pairs = [tuple(OutputStats(resolve(a) if a else None, 12, r) for _ in "ab") for a, r in kinds]
    for _ in range(2):
        ys = [make[a](2 * torch.randn(16, 9, generator=gen)) for a, _ in kinds]
        fold_outputs([(batched, y) for (batched, _), y in zip(pairs, ys, strict=True)])
        for (_, oracle), y in zip(pairs, ys, strict=True):
            oracle.update(y)
    for batched, oracle in pairs:
        got, want = batched.summary(), oracle.summary()
        assert got.pop("histogram") == want.pop("histogram")
        for key, value in want.items():
            if isinstance(value, float) and math.isfinite(value):
                assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
            else:
                assert got[key] == value, key


def test_folding_leaves_the_tensors_it_reads_untouched(gen):
    # a lone block of its shape is read through a view, not a stacked copy: the centring
    # must happen on a copy, whatever the dtype (float64 and bfloat16 gradients included)
    grads = [torch.randn(7, 3, generator=gen, dtype=torch.float64),
             torch.randn(5, generator=gen).bfloat16(), torch.randn(4, 4, generator=gen)]  # fmt: skip
    outputs = [torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen).double()]
    before = [t.clone() for t in grads + outputs]
    fold_grads([(GradStats(), g) for g in grads])
    fold_outputs([(OutputStats(None, 10, None), y) for y in outputs])
    assert all(torch.equal(a, b) for a, b in zip(before, grads + outputs, strict=True))
