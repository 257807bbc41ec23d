"""Streaming statistics against numpy / torch computed on the whole data at once."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from initlab.activations import resolve
from initlab.probe.stats import FixedHistogram, GradStats, Moments, OutputStats, auto_range


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 200), min_size=1, max_size=6),
    loc=st.floats(-1e3, 1e3),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**31 - 1),
)
def test_moments_streamed_equal_whole(sizes, loc, scale, seed):
    g = torch.Generator().manual_seed(seed)
    parts = [loc + scale * torch.randn(n, generator=g, dtype=torch.float64) for n in sizes]
    m = Moments()
    for p in parts:
        m.update(p)
    whole = torch.cat(parts)
    assert m.count == whole.numel()
    assert m.mean == pytest.approx(float(whole.mean()), rel=1e-9, abs=1e-9 * scale)
    assert m.var == pytest.approx(float(whole.var(correction=0)), rel=1e-6, abs=1e-12)
    assert (m.min, m.max) == (float(whole.min()), float(whole.max()))


def test_moments_precise_for_tiny_spread_around_large_mean(gen):
    # a collapsed sigmoid: mean 0.5, std 1e-4, in float32
    x = 0.5 + 1e-4 * torch.randn(4, 100_000, generator=gen)
    m = Moments()
    for row in x:
        m.update(row)
    assert m.std == pytest.approx(float(x.double().std(correction=0)), rel=1e-4)


def test_histogram_matches_numpy_with_under_and_overflow(gen):
    x = 2.0 * torch.randn(3, 5000, generator=gen)
    h = FixedHistogram(-1.5, 2.5, 17)
    for row in x:
        h.update(row)
    flat = x.reshape(-1).numpy()
    expected, _ = np.histogram(flat, bins=17, range=(-1.5, 2.5))
    rec = h.to_record()
    assert rec.counts == expected.tolist()
    assert rec.underflow == int((flat < -1.5).sum())
    assert rec.overflow == int((flat > 2.5).sum())
    assert rec.total == flat.size
    assert rec.edges[0] == -1.5 and rec.edges[-1] == pytest.approx(2.5) and len(rec.edges) == 18


def test_histogram_edges_are_inclusive_at_both_ends():
    h = FixedHistogram(0.0, 1.0, 4)
    h.update(torch.tensor([0.0, 1.0, 0.25, -1e-9, 1.0 + 1e-6]))
    rec = h.to_record()
    assert sum(rec.counts) == 3 and rec.counts[0] == 1 and rec.counts[-1] == 1
    assert (rec.underflow, rec.overflow) == (1, 1)


def test_saturation_thresholds_sigmoid_and_tanh():
    sig = OutputStats(resolve("sigmoid"), 30, None)
    sig.update(torch.tensor([[0.005, 0.0099, 0.011, 0.5, 0.989, 0.991, 1.0, 0.3]]))
    assert sig.summary()["saturation"] == pytest.approx(4 / 8)
    assert sig.histogram.lo == 0.0 and sig.histogram.hi == 1.0  # natural range
    tanh = OutputStats(resolve("tanh"), 30, None)
    tanh.update(torch.tensor([[-0.995, -0.98, 0.0, 0.985, 0.999, 1.0]]))
    assert tanh.summary()["saturation"] == pytest.approx(3 / 6)
    assert (tanh.histogram.lo, tanh.histogram.hi) == (-1.0, 1.0)


def test_dead_per_element_and_per_unit_over_batches():
    relu = OutputStats(resolve("relu"), 10, None)
    # unit 0 fires in batch 2 only, unit 1 never, unit 2 always
    relu.update(torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]))
    relu.update(torch.tensor([[3.0, 0.0, 1.0]]))
    s = relu.summary()
    assert s["dead_elements"] == pytest.approx(5 / 9)
    assert s["dead_units"] == pytest.approx(1 / 3)
    assert s["saturation"] is None


def test_nonfinite_values_are_counted_not_mixed_in():
    out = OutputStats(resolve("tanh"), 10, None)
    out.update(torch.tensor([[0.5, float("nan"), -0.5, float("inf")]]))
    s = out.summary()
    assert s["histogram"].nonfinite == 2 and s["count"] == 2
    assert s["mean"] == 0.0 and s["std"] == 0.5


def test_auto_range_relu_starts_at_zero_and_covers_the_bulk(gen):
    y = torch.relu(torch.randn(20_000, generator=gen))
    lo, hi = auto_range(y, resolve("relu"))
    assert lo == 0.0
    assert float((y > hi).float().mean()) < 0.001
    z = torch.randn(20_000, generator=gen)
    lo, hi = auto_range(z, None)
    assert lo < float(torch.quantile(z, 0.001)) and hi > float(torch.quantile(z, 0.999))
    assert (
        auto_range(torch.full((10,), 3.0), None)[0]
        < 3.0
        < auto_range(torch.full((10,), 3.0), None)[1]
    )


def test_unit_spread_zero_when_all_units_equal(gen):
    x = torch.randn(50, 1, generator=gen).expand(50, 8)
    out = OutputStats(None, 10, (-5.0, 5.0))
    out.update(x)
    assert out.summary()["unit_spread"] == pytest.approx(0.0, abs=1e-12)
    out2 = OutputStats(None, 10, (-5.0, 5.0))
    out2.update(torch.randn(50, 8, generator=gen))
    assert out2.summary()["unit_spread"] == pytest.approx(1.0, abs=0.2)


def test_grad_stats_norm_is_rms_of_batch_norms():
    g = GradStats()
    g.update(torch.tensor([3.0, 4.0]))  # norm 5
    g.update(torch.tensor([0.0, 0.0]))  # norm 0
    assert g.norm == pytest.approx(math.sqrt(25 / 2))
    assert g.std == pytest.approx(float(torch.tensor([3.0, 4.0, 0.0, 0.0]).std(correction=0)))
