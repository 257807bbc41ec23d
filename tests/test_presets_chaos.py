"""The edge-of-chaos presets: registered, the vanilla CNN factory, quick runs (slow)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from initlab.experiments.presets import get_preset, run_preset
from initlab.experiments.presets_chaos import vanilla_cnn


def test_presets_are_registered_outside_the_demo():
    for name in ("edge-of-chaos", "dynamical-isometry", "deep-vanilla-cnn"):
        assert not get_preset(name).in_demo


def test_vanilla_cnn_is_plain_and_deep():
    model = vanilla_cnn("tanh", (1, 28, 28), 10, depth=100, channels=4)
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert len(convs) == 100 and all(m.bias is None for m in convs)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.slow
def test_edge_of_chaos_quick_writes_grid_and_agreement(tmp_path):
    result = run_preset("edge-of-chaos", tmp_path, quick=True)
    data = json.loads((tmp_path / "edge_of_chaos.json").read_text())
    assert len(data["accuracy"]) == len(data["depths"]) and 0 <= data["agreement"] <= 1
    assert result.report_path.exists()


@pytest.mark.slow
def test_dynamical_isometry_quick_orthogonal_tanh_spreads_least(tmp_path):
    run_preset("dynamical-isometry", tmp_path, quick=True)
    data = json.loads((tmp_path / "dynamical_isometry.json").read_text())
    deep = {d["init"]: d["variance"] for d in data["spectra"] if d["depth"] == 40}
    assert deep["tanh orthogonal (critical)"] < min(
        v for k, v in deep.items() if "orthogonal (c" not in k
    )
