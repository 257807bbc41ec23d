"""init_ on the real models of tests/real_zoo.py: nothing skipped without a rule that covers
it, every initialized weight at its target std, ``auto`` keeping a plain model's output
variance near 1, and the activation ``auto`` reads where fx cannot trace."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import initlab
from initlab.initializers.fans import is_hf_conv1d
from initlab.initializers.trace import run_example
from real_zoo import ZOO

pytestmark = pytest.mark.usefixtures("one_thread")
SCHEMES = ["auto", "xavier_uniform", "he_normal", "orthogonal", "trunc_normal"]
RULE = re.compile(r"add a rule such as \('([^']+)', '([^']+)'\)")
# auto on a plain stack, one weight draw: output variance / its expectation within a factor
# of 2. One draw fluctuates: over 8 seeds the 7-layer ReLU MLP gave 0.72..1.32 (mean 0.93),
# the ReLU conv1d stack 0.61..1.08 (ReLU outputs carry a third of their energy in their mean
# direction, so a few random directions decide it).
BAND = (0.5, 2.0)


def _tanh_expectation(n_tanh: int) -> float:
    """auto's gain is 1/E[tanh(z)^2] at z ~ N(0, 1): tanh is not homogeneous, so the second
    moment settles towards a fixed point below 1. The mean-field recursion, by Gauss-Hermite
    quadrature: q_1 = s E[x^2] = s, x_l^2 = E[tanh(sqrt(q_l) z)^2], q_{l+1} = s x_l^2; the
    closing linear layer (LeCun) outputs E[x_L^2]."""
    z, w = np.polynomial.hermite_e.hermegauss(101)
    w = w / w.sum()
    s = 1.0 / float(np.sum(w * np.tanh(z) ** 2))
    q, x2 = s, 1.0
    for _ in range(n_tanh):
        x2 = float(np.sum(w * np.tanh(np.sqrt(q) * z) ** 2))
        q = s * x2
    return x2


def _init(name: str, scheme: str, rules=None):
    entry = ZOO[name]()
    report = initlab.init_(entry.model, scheme, generator=torch.Generator().manual_seed(0),
                           rules=rules)  # fmt: skip
    return entry, report


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_parameter_is_filled_or_skipped_with_a_covering_rule(name, scheme):
    entry, report = _init(name, scheme)
    filled = {r.name for r in report.rows}
    skipped = dict(report.skipped)
    rules = []
    for pname, _ in entry.model.named_parameters(remove_duplicate=False):
        assert pname in filled or pname in skipped, f"{pname} silently skipped"
        if pname in skipped:
            why = skipped[pname]
            match = RULE.search(why)
            assert "shared with" in why or match, f"{pname}: {why}"
            if match:
                assert match.group(1) == pname
                rules.append(match.groups())
    assert len(filled) == len(set(filled))  # shared parameters reported once
    if rules:  # the rules the messages suggest really cover those parameters
        _, again = _init(name, scheme, rules=rules)
        assert all("shared with" in why for _, why in again.skipped), again.skipped


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_initialized_weight_is_at_its_target_std(name, scheme):
    entry, report = _init(name, scheme)
    checked = 0
    for row in report.rows:
        param = entry.model.get_parameter(row.name)
        if param.dim() < 2 or not row.target_std:
            continue
        assert param.numel() >= 2000, f"zoo entry too small to check {row.name}"
        ratio = float(param.detach().double().std()) / row.target_std
        assert abs(ratio - 1) < 0.05, f"{row.name}: realized/target {ratio:.4f}"
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("name", sorted(n for n in ZOO if ZOO[n]().plain))
def test_auto_keeps_a_plain_models_output_variance_near_one(name):
    entry, _ = _init(name, "auto")
    captured = []
    handle = entry.model.register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        run_example(entry.model, entry.example)
    handle.remove()
    flat = list(entry.example.values()) if isinstance(entry.example, dict) else [entry.example]
    second_moment = sum(float(t.pow(2).mean()) for t in flat) / len(flat)
    n_tanh = sum(isinstance(m, torch.nn.Tanh) for m in entry.model.modules())
    expected = _tanh_expectation(n_tanh) if n_tanh else 1.0
    ratio = float(captured[0].var()) / second_moment
    print(f"{name}: output variance / input E[x^2] = {ratio:.3f} (expected {expected:.3f})")
    assert BAND[0] < ratio / expected < BAND[1]


PROBED = (torch.nn.Linear, torch.nn.Bilinear, torch.nn.modules.conv._ConvNd, torch.nn.RNNBase,
          torch.nn.Embedding, torch.nn.EmbeddingBag)  # fmt: skip


@pytest.mark.parametrize("name", sorted(ZOO))
def test_probe_covers_every_weight_layer_and_block(name):
    """Every weight layer the forward pass calls (HF Conv1D too) and every block of an
    nn.ModuleList has output statistics, and a gradient where it is on the loss's path."""
    entry = ZOO[name]()
    called: list[str] = []
    handles = [m.register_forward_hook(lambda m, i, o, n=n: called.append(n))
               for n, m in entry.model.named_modules()
               if isinstance(m, PROBED) or is_hf_conv1d(m)]  # fmt: skip
    with torch.no_grad():
        run_example(entry.model, entry.example)
    for h in handles:
        h.remove()
    blocks = [f"{n}.{i}" for n, m in entry.model.named_modules()
              if isinstance(m, torch.nn.ModuleList) for i in range(len(m))]  # fmt: skip
    report = initlab.probe(entry.model, entry.example, loss_fn="mean_square")
    probed = {x.name: x for x in report.layers}
    missing = [n for n in dict.fromkeys(called + blocks) if n not in probed]
    assert not missing, f"not probed: {missing}"
    for layer in probed.values():
        assert layer.std is not None and math.isfinite(layer.std), layer.name
        if "pooler" not in layer.name:  # BERT's pooler is not on last_hidden_state's path
            assert layer.grad_std is not None and layer.grad_std > 0, layer.name


AUTO_ACTIVATIONS = {
    "hf_gpt2": {"transformer.h.0.mlp.c_fc.weight": "gelu:approximate=tanh",
                "transformer.h.0.mlp.c_proj.weight": "none",
                "transformer.h.1.attn.c_attn.weight": "none"},
    "hf_bert": {"encoder.layer.0.intermediate.dense.weight": "gelu",
                "encoder.layer.0.output.dense.weight": "none",
                "encoder.layer.1.attention.self.query.weight": "none"},
    "hf_llama": {"model.layers.0.mlp.gate_proj.weight": "silu",
                 "model.layers.0.mlp.up_proj.weight": "none",
                 "model.layers.0.mlp.down_proj.weight": "none",
                 "model.layers.1.self_attn.o_proj.weight": "none"},
    "torch_transformer": {"encoder.layers.0.linear1.weight": "relu",
                          "encoder.layers.0.linear2.weight": "none",
                          "decoder.layers.0.linear1.weight": "relu",
                          "decoder.layers.0.multihead_attn.in_proj_weight": "none"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(AUTO_ACTIVATIONS))
def test_auto_finds_the_activation_of_untraceable_models_without_example_input(name):
    entry, report = _init(name, "auto")
    got = {r.name: r.activation for r in report.rows}
    assert {k: got[k] for k in AUTO_ACTIVATIONS[name]} == AUTO_ACTIVATIONS[name]
    gains = {r.name: r.gain for r in report.rows}
    first = next(iter(AUTO_ACTIVATIONS[name]))
    assert gains[first] > 1.0  # the gain of a ReLU-like activation, not LeCun's 1


def test_gated_mlp_structure_without_a_forward():
    """A gated MLP built by hand and not traceable (data-dependent control flow)."""

    class Gated(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up_proj = torch.nn.Linear(64, 128)
            self.gate_proj = torch.nn.Linear(64, 128)
            self.down_proj = torch.nn.Linear(128, 64)
            self.act_fn = torch.nn.SiLU()

        def forward(self, x):
            if x.sum() > 0:  # fx cannot trace this
                x = x * 1.0
            return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))

    report = initlab.init_(Gated(), "auto", generator=torch.Generator().manual_seed(0))
    got = {r.name: r.activation for r in report.rows if r.name.endswith("weight")}
    assert got == {"up_proj.weight": "none", "gate_proj.weight": "silu",
                   "down_proj.weight": "none"}  # fmt: skip
    assert any("module structure" in n for n in report.notes)
