"""init_ on whole models: fans, auto gains, torch_default as PyTorch does it, specs, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.initializers.fans import module_blocks
from initlab.initializers.registry import names


def classic_mlp(act=nn.ReLU):
    sizes = [784, 100, 100, 100, 100, 10]
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("scheme", ["he_normal", "auto"])
def test_classic_relu_mlp_hidden_layers_get_he_std(scheme, gen):
    model = classic_mlp()
    report = initlab.init_(model, scheme, generator=gen)
    for i in (0, 2, 4, 6):
        w = model[i].weight.detach()
        target = math.sqrt(2 / w.shape[1])
        assert abs(float(w.std()) / target - 1) < 0.03
        assert report.row(f"{i}.weight").target_std == pytest.approx(target)
    if scheme == "auto":
        out = model[8].weight  # 1,000 weights followed by no activation: LeCun
        assert abs(float(out.detach().std()) / math.sqrt(1 / 100) - 1) < 0.08
        assert report.row("8.weight").activation == "none"
        assert report.row("0.weight").activation == "relu"
    assert all(float(model[i].bias.detach().abs().max()) == 0 for i in (0, 2, 4, 6, 8))


def test_same_seed_bit_identical_and_global_rng_untouched():
    a, b, c = classic_mlp(), classic_mlp(), classic_mlp()  # nn.Linear() itself draws globally
    state = torch.random.get_rng_state()
    initlab.init_(a, "he_normal", generator=torch.Generator().manual_seed(7))
    initlab.init_(b, "he_normal", generator=torch.Generator().manual_seed(7))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert torch.equal(torch.random.get_rng_state(), state)
    initlab.init_(c, "he_normal", generator=torch.Generator().manual_seed(8))
    assert not torch.equal(a[0].weight, c[0].weight)


@pytest.mark.parametrize(
    "layer",
    [nn.Linear(30, 20), nn.Conv1d(4, 6, 5), nn.Conv2d(3, 16, (3, 5)), nn.Conv3d(2, 4, 3)],
    ids=["linear", "conv1d", "conv2d", "conv3d"],
)
def test_fans_agree_with_pytorch(layer):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(layer.weight)
    block = module_blocks(layer, "weight", tuple(layer.weight.shape))[0]
    assert (block.fan_in, block.fan_out) == (fan_in, fan_out)


def test_grouped_conv_and_conv_transpose_fans_follow_the_forward_pass():
    conv = nn.Conv2d(8, 16, 3, groups=4)  # weight [16, 2, 3, 3]
    b = module_blocks(conv, "weight", tuple(conv.weight.shape))[0]
    assert (b.fan_in, b.fan_out) == (2 * 9, 4 * 9)
    # ConvTranspose2d(in=6, out=10): weight [6, 10, 3, 3]; each output sums over 6 inputs.
    convt = nn.ConvTranspose2d(6, 10, 3)
    b = module_blocks(convt, "weight", tuple(convt.weight.shape))[0]
    assert (b.fan_in, b.fan_out) == (6 * 9, 10 * 9)
    # PyTorch's generic rule swaps them for transposed convolutions
    assert torch.nn.init._calculate_fan_in_and_fan_out(convt.weight) == (10 * 9, 6 * 9)
    # and the variance it implies is the one the forward pass preserves (stride 1)
    convt = nn.ConvTranspose2d(64, 8, 3, bias=False)
    initlab.init_(convt, "lecun_normal", generator=torch.Generator().manual_seed(0))
    x = torch.randn(16, 64, 12, 12, generator=torch.Generator().manual_seed(1))
    y = convt(x).detach()[:, :, 2:-2, 2:-2]  # away from the borders every output sees every tap
    assert abs(float(y.var()) - 1.0) < 0.1


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Linear(50, 30),
        lambda: nn.Conv2d(3, 8, 3),
        lambda: nn.ConvTranspose2d(4, 6, 3),
        lambda: nn.Embedding(20, 8),
        lambda: nn.LSTM(10, 16, num_layers=2),
        lambda: nn.GRU(6, 12),
    ],
    ids=["linear", "conv", "convT", "embedding", "lstm", "gru"],
)
def test_torch_default_is_bit_identical_to_pytorch(make):
    torch.manual_seed(123)
    reference = make()
    ours = make()
    initlab.init_(ours, "torch_default", generator=torch.Generator().manual_seed(123))
    for (name, p), q in zip(reference.named_parameters(), ours.parameters()):
        assert torch.equal(p, q), name


def test_torch_default_attention_matches_pytorch_rules():
    # the rules themselves (bit-identity is tests/test_torch_default_real.py)
    mha = nn.MultiheadAttention(256, 4)
    initlab.init_(mha, "torch_default", generator=torch.Generator().manual_seed(0))
    w = mha.in_proj_weight.detach()  # xavier_uniform over the whole [3E, E] tensor
    assert abs(float(w.std()) / math.sqrt(2 / (256 + 768)) - 1) < 0.02
    assert float(mha.in_proj_bias.detach().abs().max()) == 0
    assert float(mha.out_proj.bias.detach().abs().max()) == 0
    assert abs(float(mha.out_proj.weight.detach().std()) * math.sqrt(3 * 256) - 1) < 0.03


def test_lstm_gates_are_filled_per_block(gen):
    lstm = nn.LSTM(32, 16)
    report = initlab.init_(lstm, "orthogonal", generator=gen)
    w = lstm.weight_hh_l0.detach()
    for g in range(4):
        block = w[g * 16 : (g + 1) * 16]
        assert torch.allclose(block @ block.T, torch.eye(16), atol=1e-5)
    assert report.row("weight_hh_l0").blocks == 4


def test_multihead_attention_blocks_get_square_layer_std():
    mha = nn.MultiheadAttention(256, 8)
    initlab.init_(mha, "xavier_uniform", generator=torch.Generator().manual_seed(0))
    for i in range(3):
        block = mha.in_proj_weight.detach()[i * 256 : (i + 1) * 256]
        assert abs(float(block.std()) / math.sqrt(2 / 512) - 1) < 0.03


def test_norm_layers_rules_unknown_and_meta():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.alpha = nn.Parameter(torch.full((3,), 5.0))

        def forward(self, x):
            return x * self.alpha

    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), Scale(), nn.LayerNorm(3))
    with torch.no_grad():
        model[1].weight.fill_(3)
        model[3].bias.fill_(2)
    report = initlab.init_(
        model, "he_normal", rules=[("0.bias", "constant:value=0.1")], generator=torch.Generator()
    )
    assert torch.all(model[0].bias == 0.1)
    assert torch.all(model[1].weight == 1) and torch.all(model[3].bias == 0)
    assert torch.all(model[2].alpha == 5.0)
    assert [name for name, _ in report.skipped] == ["2.alpha"]
    initlab.init_(model, "he_normal", rules={"*.alpha": "ones"})
    assert torch.all(model[2].alpha == 1.0)

    with torch.device("meta"):
        big = nn.Linear(1000, 1000)
    report = initlab.init_(big, "he_normal")
    assert {n for n, _ in report.skipped} == {"weight", "bias"} and not report.rows
    big = big.to_empty(device="cpu")
    initlab.init_(big, "he_normal")
    assert abs(float(big.weight.detach().std()) / math.sqrt(2 / 1000) - 1) < 0.02


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_any_floating_dtype(dtype):
    layer = nn.Linear(500, 200).to(dtype)
    initlab.init_(layer, "he_normal", generator=torch.Generator().manual_seed(0))
    assert layer.weight.dtype == dtype
    assert abs(float(layer.weight.detach().float().std()) / math.sqrt(2 / 500) - 1) < 0.03


def test_formula_scheme_refuses_data():
    with pytest.raises(initlab.InitSpecError, match="does not use data"):
        initlab.init_(nn.Linear(2, 2), "he_normal", data=torch.zeros(1, 2))


def test_get_suggests_the_closest_name():
    with pytest.raises(initlab.InitSpecError) as e:
        initlab.get("he_norml")
    assert "he_normal" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(initlab.InitSpecError, match="Did you mean 'std'"):
        initlab.get("normal:sdt=0.1")
    with pytest.raises(initlab.InitSpecError, match="fan_in, fan_out, fan_avg"):
        initlab.get("he_normal:mode=fan_inn")
    with pytest.raises(initlab.InitSpecError, match="must be >= 0"):
        initlab.get("normal:std=-1")
    with pytest.raises(initlab.InitSpecError, match="must be a float"):
        initlab.get("normal:std=abc")


@pytest.mark.parametrize("name", names())
def test_config_round_trips_through_json(name):
    spec = initlab.get(name)
    config = json.loads(json.dumps(spec.to_config()))
    assert initlab.get(config) == spec
    assert initlab.get(spec.to_spec()) == spec
    assert initlab.get(json.dumps(config)) == spec


def test_aliases_are_exact_synonyms():
    assert initlab.get("kaiming_normal") == initlab.get("he_normal")
    assert initlab.get("glorot_uniform:gain=2") == initlab.get("xavier_uniform:gain=2.0")
    assert initlab.get({"name": "variance_scaling", "scale": 2}).scale == 2.0


def test_report_converts_to_plain_dicts(gen):
    report = initlab.init_(classic_mlp(), "auto", generator=gen)
    rows = report.to_dicts()
    assert rows[0]["name"] == "0.weight" and rows[0]["shape"] == [100, 784]
    json.dumps(report.to_dict())
    assert F.relu  # keep the functional import used
