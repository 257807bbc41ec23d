"""Residual-aware schemes: block discovery, variance growth at init, and what each scheme sets.

The growth figures are measured, not assumed: a 50-block ReLU residual MLP (width 256) under
plain He multiplies the stream's variance by about 3 per block; Fixup and zero_last_gamma keep
it at the input's; Fixup's L^(-1/(2m-2)) factor alone (last layers kept He by a rule) bounds it
by (1 + 2/L)^L, about e^2, whatever the depth.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initlab
from initlab.errors import InitSpecError
from initlab.initializers.residual_find import find_blocks
from initlab.models.residual import residual_mlp
from initlab.probe.residual_growth import variance_growth

DEPTH, WIDTH = 50, 256


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def x():
    return torch.randn(512, WIDTH, generator=seeded(1))


class Basic(nn.Module):
    """torchvision's BasicBlock: conv-bn-relu-conv-bn, plus a projection when shapes change."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))  # fmt: skip

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        out += x if self.down is None else self.down(x)
        return torch.relu(out)


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1 = nn.Sequential(Basic(8, 8), Basic(8, 16, 2))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.layer1(self.stem(x)).mean((2, 3)))


class PreNorm(nn.Module):
    def __init__(self, e: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(e), nn.LayerNorm(e)
        self.attn = nn.MultiheadAttention(e, 4, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(e, 4 * e), nn.GELU(), nn.Linear(4 * e, e))
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.drop(self.attn(h, h, h, need_weights=False)[0])
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, n_layers: int = 3, e: int = 64) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(100, e), nn.Embedding(32, e)
        self.h = nn.ModuleList(PreNorm(e) for _ in range(n_layers))
        self.lnf = nn.LayerNorm(e)
        self.head = nn.Linear(e, 100, bias=False)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.size(1), device=idx.device))
        for block in self.h:
            x = block(x)
        return self.head(self.lnf(x))


class Stage(nn.Module):
    """An outer skip around two residual blocks: only the inner blocks count."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = residual_mlp(2, 8)

    def forward(self, x):
        return x + self.inner(x)


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.LayerNorm(8))

    def forward(self, x):
        return x + self.branch(x) if float(x.sum()) > -1e9 else x


def test_blocks_found_in_residual_mlps_resnet_and_gpt():
    plain = find_blocks(residual_mlp(3, 8, in_features=20, out_features=4))
    assert [b.name for b in plain.blocks] == ["blocks.0", "blocks.1", "blocks.2"]
    assert plain.blocks[0].layers == ("blocks.0.fc1", "blocks.0.fc2")
    assert plain.order[0] == "stem" and plain.order[-1] == "head"
    assert find_blocks(residual_mlp(2, 8, norm="batchnorm")).blocks[1].norm == "blocks.1.norm"
    scalars = find_blocks(residual_mlp(2, 8, gate=True, scalars=True)).blocks[0]
    assert scalars.gate == "blocks.0.gate"
    assert set(scalars.multipliers) == {"blocks.0.gate", "blocks.0.scale"}
    assert scalars.biases == tuple(f"blocks.0.bias{i}" for i in ("1a", "1b", "2a", "2b"))

    resnet = find_blocks(ResNet()).blocks
    assert [(b.name, b.norm, b.shortcut) for b in resnet] == [
        ("layer1.0", "layer1.0.bn2", ()), ("layer1.1", "layer1.1.bn2", ("layer1.1.down.0",)),
    ]  # fmt: skip

    gpt = find_blocks(TinyGPT()).blocks  # tok + pos(arange(idx.size(1))) is no residual
    assert [b.name for b in gpt] == ["h.0:attn", "h.0:mlp", "h.1:attn", "h.1:mlp", "h.2:attn",
                                     "h.2:mlp"]  # fmt: skip
    assert gpt[0].layers == ("h.0.attn", "h.0.attn.out_proj") and gpt[0].norm is None

    stage = find_blocks(Stage())
    assert [b.name for b in stage.blocks] == ["inner.blocks.0", "inner.blocks.1"]
    assert any("wraps other blocks" in n for n in stage.notes)


def test_untraceable_model_needs_a_rule_and_the_rule_names_branches():
    model = Untraceable()
    with pytest.raises(InitSpecError, match="found no residual block.*branches=GLOB"):
        initlab.init_(model, "zero_last_gamma", generator=seeded())
    report = initlab.init_(model, "zero_last_gamma:branches=branch", generator=seeded())
    assert float(model.branch[3].weight.detach().abs().max()) == 0
    assert report.extra["residual_blocks"][0]["found_by"] == "rule"
    with pytest.raises(InitSpecError, match="matched no module.*branch"):
        initlab.init_(model, "fixup:branches=blocks.*", generator=seeded())


def test_variance_growth_on_rule_named_and_torch_layer_blocks():
    model = Untraceable()
    initlab.init_(model, "he_normal", generator=seeded())
    x = torch.randn(256, 8, generator=seeded(1))
    growth = variance_growth(model, x, branches="branch")
    with torch.no_grad():
        expected = float((x + model.branch(x)).double().var()) / float(x.double().var())
    assert growth.blocks == ["branch"] and growth.growth == pytest.approx(expected)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    growth = variance_growth(encoder, torch.randn(4, 10, 32, generator=seeded(2)) * 3)
    assert growth.blocks == ["layers.0", "layers.1", "layers.2"]  # one point per layer
    assert growth.input_var == pytest.approx(9, rel=0.2)  # post-norm: each output has var 1
    assert all(abs(r * 9 - 1) < 0.2 for r in growth.ratios)
    with pytest.raises(InitSpecError, match="no residual blocks"):
        variance_growth(nn.Linear(3, 3), torch.zeros(2, 3))


def test_plain_he_residual_mlp_variance_grows_about_3x_per_block(x):
    model = residual_mlp(DEPTH, WIDTH)
    initlab.init_(model, "he_normal", generator=seeded())
    growth = variance_growth(model, x)
    per_block = growth.growth ** (1 / DEPTH)
    print(f"He, {DEPTH} blocks: growth {growth.growth:.3g}, {per_block:.3f} per block")
    assert len(growth.ratios) == DEPTH and growth.growth > 1e20
    assert 2.6 < per_block < 3.4  # 1 + 2 (He branch adds twice the stream's variance)
    assert all(b > a for a, b in zip(growth.ratios, growth.ratios[1:]))


def test_fixup_keeps_variance_at_input_and_its_factor_alone_bounds_growth(x):
    model = residual_mlp(DEPTH, WIDTH)
    report = initlab.init_(model, "fixup", generator=seeded())
    growth = variance_growth(model, x)
    print(f"fixup, {DEPTH} blocks: growth {growth.growth:.4g}")
    assert max(growth.ratios) <= 2 and min(growth.ratios) >= 0.5
    factor = DEPTH**-0.5  # m = 2 layers per branch: L^(-1/2)
    for block in model.blocks:
        assert float(block.fc2.weight.detach().abs().max()) == 0
        realized = float(block.fc1.weight.detach().std()) / (factor * math.sqrt(2 / WIDTH))
        assert abs(realized - 1) < 0.03
    assert report.row("blocks.0.fc1.weight").target_std == pytest.approx(
        factor * math.sqrt(2 / WIDTH)
    )
    assert report.row("blocks.0.fc2.weight").target_std == 0
    assert len(report.extra["residual_blocks"]) == DEPTH
    assert any(n.startswith(f"residual blocks: {DEPTH} found by torch.fx") for n in report.notes)

    # the scaling without the zeros: each block multiplies variance by 1 + 2/L
    kept = residual_mlp(DEPTH, WIDTH)
    report = initlab.init_(kept, "fixup", rules=[("*.fc2.weight", "he_normal")],
                           generator=seeded())  # fmt: skip
    bound = (1 + 2 / DEPTH) ** DEPTH
    measured = variance_growth(kept, x).growth
    print(f"fixup with He last layers: growth {measured:.3f}, (1 + 2/L)^L = {bound:.3f}")
    assert abs(measured / bound - 1) < 0.2
    assert any("left as a rule set them" in n for n in report.notes)


def test_fixup_head_and_scalars():
    model = residual_mlp(4, 16, scalars=True, in_features=10, out_features=3)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.7)
    report = initlab.init_(model, "fixup", generator=seeded())
    assert float(model.head.weight.detach().abs().max()) == 0  # Fixup rule 1: classifier at zero
    assert float(model.stem.weight.detach().std()) > 0
    for block in model.blocks:
        assert float(block.scale.detach()) == 1.0
        assert all(
            float(getattr(block, f"bias{i}").detach()) == 0 for i in ("1a", "1b", "2a", "2b")
        )
    assert report.row("blocks.0.scale").scheme == "fixup"
    assert not any(name.startswith("blocks.0.bias1a") for name, _ in report.skipped)
    initlab.init_(model, "fixup:zero_head=false", generator=seeded())
    assert float(model.head.weight.detach().std()) > 0


def test_zero_last_gamma_on_batchnorm_branches_train_and_eval(x):
    model = residual_mlp(DEPTH, WIDTH, norm="batchnorm")
    initlab.init_(model, "he_normal", generator=seeded())
    he_train = variance_growth(model, x, train=True).growth
    he_eval = variance_growth(model, x, train=False).growth
    report = initlab.init_(model, "zero_last_gamma", generator=seeded())
    zero_train = variance_growth(model, x, train=True).growth
    zero_eval = variance_growth(model, x, train=False).growth
    print(f"BN MLP He: train {he_train:.3g}, eval {he_eval:.3g}; "
          f"zero_last_gamma: train {zero_train:.4g}, eval {zero_eval:.4g}")  # fmt: skip
    assert 40 < he_train < 60  # BN makes each branch add unit variance: about 1 + L
    assert he_eval > 1e20  # fresh running stats: BN is the identity, as without it
    assert 0.5 <= zero_train <= 2 and 0.5 <= zero_eval <= 2
    assert all(float(b.norm.weight.detach().abs().max()) == 0 for b in model.blocks)
    assert all(float(b.norm.running_var.mean()) == 1 for b in model.blocks)  # restored
    assert report.row("blocks.0.norm.weight").target_std == 0
    with pytest.raises(InitSpecError, match="end in a norm layer"):
        initlab.init_(residual_mlp(3, 8), "zero_last_gamma", generator=seeded())
    resnet = ResNet()
    initlab.init_(resnet, "zero_last_gamma", generator=seeded())
    assert float(resnet.layer1[1].bn2.weight.detach().abs().max()) == 0
    assert float(resnet.layer1[1].bn1.weight.detach().min()) == 1
    assert float(resnet.layer1[1].down[1].weight.detach().min()) == 1  # the shortcut's norm stays


def test_skipinit_zeroes_gates_and_needs_them(x):
    model = residual_mlp(DEPTH, WIDTH, gate=True)
    report = initlab.init_(model, "skipinit", generator=seeded())
    assert all(float(b.gate.detach()) == 0 for b in model.blocks)
    assert abs(float(model.blocks[0].fc2.weight.detach().std()) / math.sqrt(2 / WIDTH) - 1) < 0.03
    assert report.row("blocks.3.gate").scheme == "skipinit"
    assert variance_growth(model, x).growth == pytest.approx(1.0)
    with pytest.raises(InitSpecError, match="needs a gate parameter"):
        initlab.init_(residual_mlp(3, 8), "skipinit", generator=seeded())


def test_gpt2_residual_projections_on_custom_and_torch_transformers():
    model = TinyGPT(n_layers=3)
    report = initlab.init_(model, "gpt2_residual", generator=seeded())
    small = 0.02 / math.sqrt(2 * 3)
    for i in range(3):
        for name in (f"h.{i}.attn.out_proj.weight", f"h.{i}.mlp.2.weight"):
            assert abs(float(model.get_parameter(name).detach().std()) / small - 1) < 0.03, name
            assert report.row(name).target_std == pytest.approx(small)
        assert abs(float(model.h[i].mlp[0].weight.detach().std()) / 0.02 - 1) < 0.03
        assert abs(float(model.h[i].attn.in_proj_weight.detach().std()) / 0.02 - 1) < 0.03
    assert abs(float(model.tok.weight.detach().std()) / 0.02 - 1) < 0.03
    assert float(model.h[0].ln1.weight.detach().min()) == 1
    initlab.init_(model, "gpt2_residual:n_layers=12,std=0.01", generator=seeded())
    assert abs(float(model.h[0].mlp[2].weight.detach().std()) / (0.01 / math.sqrt(24)) - 1) < 0.03

    layer = nn.TransformerEncoderLayer(64, 4, 256)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    report = initlab.init_(encoder, "gpt2_residual", generator=seeded())
    assert [b["name"] for b in report.extra["residual_blocks"]] == [
        "layers.0:self_attn", "layers.0:feed_forward", "layers.1:self_attn",
        "layers.1:feed_forward",
    ]  # fmt: skip
    assert report.row("layers.1.linear2.weight").target_std == pytest.approx(0.01)
    with pytest.raises(InitSpecError, match="found no residual block"):
        initlab.init_(nn.Sequential(nn.Linear(4, 4)), "gpt2_residual", generator=seeded())


def test_specs_errors_and_randomness():
    with pytest.raises(InitSpecError, match="formula scheme"):
        initlab.get("fixup:base=lsuv")
    with pytest.raises(InitSpecError, match="Did you mean 'fixup'"):
        initlab.get("fixupp")
    with pytest.raises(InitSpecError, match="use it as init_'s scheme"):
        initlab.init_(nn.Linear(3, 3), "he_normal", rules=[("weight", "skipinit")])
    assert initlab.get(initlab.get("fixup:base=auto").to_config()) == initlab.get("fixup:base=auto")
    a, b = residual_mlp(3, 16, gate=True), residual_mlp(3, 16, gate=True)
    state = torch.random.get_rng_state()
    initlab.init_(a, "skipinit:base=xavier_normal", generator=seeded(5))
    initlab.init_(b, "skipinit:base=xavier_normal", generator=seeded(5))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
