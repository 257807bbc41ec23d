"""torch_default against PyTorch's own construction, bit for bit, and LSTM projections.

The oracle is PyTorch itself: ``torch.manual_seed(s); reference = make()`` gives the values a
constructor draws from the global RNG, and ``init_(make(), "torch_default", generator=
torch.Generator().manual_seed(s))`` must reproduce every parameter with ``torch.equal``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initlab
from initlab.initializers.fans import module_blocks
from initlab.initializers.registry import LayerContext, get

pytestmark = pytest.mark.usefixtures("one_thread")
SEED = 123


def _encoder(layers=3, norm=True):
    layer = nn.TransformerEncoderLayer(16, 4, 32)
    return nn.TransformerEncoder(
        layer, layers, norm=nn.LayerNorm(16) if norm else None, enable_nested_tensor=False
    )


def _hf_conv1d_model():
    conv1d = pytest.importorskip("transformers.pytorch_utils").Conv1D
    # a Linear on either side: the Conv1D must take exactly its one normal_ draw, in order
    return nn.Sequential(nn.Linear(6, 8), conv1d(12, 8), nn.Linear(12, 4), conv1d(5, 4))


CASES = {
    "linear": lambda: nn.Linear(50, 30),
    "bilinear": lambda: nn.Bilinear(5, 7, 3),
    "bilinear_no_bias": lambda: nn.Bilinear(9, 4, 6, bias=False),
    "conv1d_grouped": lambda: nn.Conv1d(6, 9, 5, groups=3),
    "conv2d": lambda: nn.Conv2d(3, 8, (3, 5)),
    "conv3d": lambda: nn.Conv3d(2, 4, 3),
    "convT1d_grouped": lambda: nn.ConvTranspose1d(8, 6, 3, groups=2),
    "convT2d": lambda: nn.ConvTranspose2d(4, 6, 3),
    "convT3d": lambda: nn.ConvTranspose3d(2, 3, 2),
    "embedding_padding": lambda: nn.Embedding(20, 8, padding_idx=3),
    "embedding_bag_padding": lambda: nn.EmbeddingBag(20, 8, padding_idx=3),
    "rnn_relu": lambda: nn.RNN(5, 7, num_layers=2, nonlinearity="relu"),
    "gru_bidirectional": lambda: nn.GRU(6, 12, num_layers=2, bidirectional=True),
    "lstm_proj": lambda: nn.LSTM(10, 20, num_layers=2, proj_size=5),
    "lstm_proj_bidirectional": lambda: nn.LSTM(10, 20, num_layers=2, proj_size=5,
                                               bidirectional=True),
    "cells": lambda: nn.ModuleList([nn.RNNCell(4, 6), nn.LSTMCell(4, 6), nn.GRUCell(4, 6)]),
    "mha": lambda: nn.MultiheadAttention(16, 4),
    "mha_no_bias": lambda: nn.MultiheadAttention(16, 4, bias=False),
    "mha_bias_kv": lambda: nn.MultiheadAttention(16, 4, add_bias_kv=True),
    "mha_kdim_vdim": lambda: nn.MultiheadAttention(16, 4, kdim=6, vdim=10),
    "mha_kdim_vdim_bias_kv_no_bias": lambda: nn.MultiheadAttention(
        16, 2, bias=False, add_bias_kv=True, kdim=5, vdim=3
    ),
    "encoder_layer": lambda: nn.TransformerEncoderLayer(16, 4, 32),
    "encoder_layer_norm_first_gelu": lambda: nn.TransformerEncoderLayer(
        16, 4, 32, activation="gelu", norm_first=True, batch_first=True
    ),
    "decoder_layer": lambda: nn.TransformerDecoderLayer(16, 4, 32),
    "encoder": _encoder,
    "decoder": lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(16, 4, 32), 2),
    # the stream after a cloned stack must be where torch left it: a Linear follows
    "encoder_then_linear": lambda: nn.Sequential(_encoder(2, norm=False), nn.Linear(16, 4)),
    "mixed_sequence": lambda: nn.Sequential(
        nn.Embedding(11, 16), nn.MultiheadAttention(16, 2), nn.Bilinear(16, 3, 4),
        nn.LSTM(4, 6, proj_size=2), nn.Conv1d(2, 3, 3),
    ),  # fmt: skip
    "hf_conv1d": _hf_conv1d_model,
}  # fmt: skip


def assert_matches_construction(make, seed=SEED):
    """init_(torch_default) on a fresh module equals torch's construction-time values."""
    torch.manual_seed(seed)
    reference = make()
    ours = make()  # drawn from the global RNG after the reference: different values
    pairs = list(zip(reference.named_parameters(), ours.parameters(), strict=True))
    assert pairs
    assert any(not torch.equal(p, q) for (_, p), q in pairs if p.numel() > 1 and p.std() > 0)
    initlab.init_(ours, "torch_default", generator=torch.Generator().manual_seed(seed))
    for (name, p), q in pairs:
        assert torch.equal(p, q), name
    return ours


@pytest.mark.parametrize("case", CASES)
def test_torch_default_is_bit_identical_to_construction(case):
    assert_matches_construction(CASES[case])


@pytest.mark.parametrize("seed", [0, 7])
def test_bilinear_bound_is_one_over_sqrt_in1(seed):
    in1, in2 = 16, 25
    layer = nn.Bilinear(in1, in2, 400)
    report = initlab.init_(layer, "torch_default", generator=torch.Generator().manual_seed(seed))
    bound = 1 / math.sqrt(in1)  # torch: 1/sqrt(weight.size(1)); not 1/sqrt(in1 * in2)
    for name in ("weight", "bias"):
        values = getattr(layer, name).detach()
        assert float(values.abs().max()) <= bound
        assert float(values.abs().max()) > 0.9 * bound  # 1/sqrt(in1*in2) is 5x smaller
        assert report.row(name).target_std == pytest.approx(bound / math.sqrt(3))
    assert abs(float(layer.weight.detach().std()) * math.sqrt(3 * in1) - 1) < 0.02


def test_construction_order_children_first_and_default_order_unchanged():
    mha = nn.MultiheadAttention(8, 2, add_bias_kv=True)
    gen = torch.Generator().manual_seed(0)
    order = [n for n, _ in get("torch_default").fill_order(mha, gen)]
    assert order == ["out_proj", ""]  # Linear's reset runs inside MHA.__init__, first
    assert [n for n, _ in get("he_normal").fill_order(mha, gen)] == ["", "out_proj"]
    report = initlab.init_(mha, "torch_default", generator=gen)
    names = [r.name for r in report.rows]
    assert names[:2] == ["out_proj.weight", "out_proj.bias"]
    assert names.index("in_proj_weight") < names.index("bias_k") < names.index("bias_v")


def test_cloned_stack_layers_are_identical_as_torch_builds_them():
    encoder = _encoder(3)
    initlab.init_(encoder, "torch_default", generator=torch.Generator().manual_seed(1))
    first = dict(encoder.layers[0].named_parameters())
    for layer in encoder.layers[1:]:
        for name, p in layer.named_parameters():
            assert torch.equal(p, first[name]), name
    # other schemes keep drawing independently per layer
    initlab.init_(encoder, "he_normal", generator=torch.Generator().manual_seed(1))
    assert not torch.equal(encoder.layers[0].linear1.weight, encoder.layers[1].linear1.weight)


def _transformer():
    return nn.Transformer(16, 4, 2, 2, 32, batch_first=True)


def test_transformer_biases_and_norms_are_bit_identical():
    torch.manual_seed(SEED)
    reference = _transformer()
    ours = _transformer()
    initlab.init_(ours, "torch_default", generator=torch.Generator().manual_seed(SEED))
    theirs = dict(reference.named_parameters())
    one_d = [(n, p) for n, p in ours.named_parameters() if p.dim() == 1]
    assert len(one_d) > 20
    for name, p in one_d:
        assert torch.equal(p, theirs[name]), name
    # nonzero biases drawn by the layers' constructors, not only zeros and ones
    assert float(ours.encoder.layers[1].linear1.bias.abs().max()) > 0


@pytest.mark.xfail(
    strict=True,
    reason="nn.Transformer re-draws every >= 2-d parameter with xavier_uniform_ after both "
    "stacks are built; a one-visit-per-module fill cannot put a Linear's weight and bias at "
    "those two points of the random stream",
)
def test_transformer_weights_are_bit_identical():
    torch.manual_seed(SEED)
    reference = _transformer()
    ours = _transformer()
    initlab.init_(ours, "torch_default", generator=torch.Generator().manual_seed(SEED))
    theirs = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.equal(p, theirs[name]), name


def test_hf_conv1d_torch_default_is_normal_002_with_zero_bias():
    conv1d = pytest.importorskip("transformers.pytorch_utils").Conv1D
    layer = conv1d(300, 200)  # weight [200, 300]
    report = initlab.init_(layer, "torch_default", generator=torch.Generator().manual_seed(0))
    assert abs(float(layer.weight.std()) / 0.02 - 1) < 0.02
    assert float(layer.bias.abs().max()) == 0
    assert report.row("weight").target_std == pytest.approx(0.02)
    assert report.row("bias").target_std == 0


# --- LSTM with proj_size: fans, blocks and per-block std for the formula schemes ----------

HIDDEN, PROJ, INPUT = 128, 48, 64


def _proj_lstm(bidirectional):
    return nn.LSTM(INPUT, HIDDEN, num_layers=2, proj_size=PROJ, bidirectional=bidirectional)


def test_proj_lstm_blocks_split_gates_only():
    lstm = _proj_lstm(bidirectional=True)
    blocks = {n: module_blocks(lstm, n, tuple(p.shape)) for n, p in lstm.named_parameters()}
    assert [(b.fan_in, b.fan_out) for b in blocks["weight_hr_l0"]] == [(HIDDEN, PROJ)]
    assert [(b.fan_in, b.fan_out) for b in blocks["weight_hr_l1_reverse"]] == [(HIDDEN, PROJ)]
    for name, fan_in in [("weight_ih_l0", INPUT), ("weight_hh_l0", PROJ),
                         ("weight_ih_l1", 2 * PROJ), ("weight_hh_l1_reverse", PROJ)]:  # fmt: skip
        assert [(b.start, b.stop) for b in blocks[name]] == [
            (g * HIDDEN, (g + 1) * HIDDEN) for g in range(4)
        ]
        assert {(b.fan_in, b.fan_out) for b in blocks[name]} == {(fan_in, HIDDEN)}


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("scheme", ["xavier_uniform", "orthogonal", "he_normal"])
def test_proj_lstm_formula_schemes_hit_their_target_per_block(scheme, bidirectional):
    lstm = _proj_lstm(bidirectional)
    report = initlab.init_(lstm, scheme, generator=torch.Generator().manual_seed(0))
    spec = get(scheme)
    row = report.row("weight_hr_l0")
    assert (row.fan_in, row.fan_out, row.blocks) == (HIDDEN, PROJ, 1)
    assert report.row("weight_hh_l0").fan_in == PROJ and report.row("weight_hh_l0").blocks == 4
    checked = 0
    for name, p in lstm.named_parameters():
        if p.dim() < 2:
            assert float(p.abs().max()) == 0, name  # biases: zeros by default
            continue
        for b in module_blocks(lstm, name, tuple(p.shape)):
            values = p.detach()[b.start : b.stop]
            ctx = LayerContext(fan_in=b.fan_in, fan_out=b.fan_out, shape=tuple(values.shape),
                               module=lstm, param_name=name)  # fmt: skip
            ratio = float(values.std()) / spec.target_std(ctx)
            assert abs(ratio - 1) < 0.05, (name, b, ratio)
            checked += 1
    assert checked == (2 if bidirectional else 1) * 2 * (4 + 4 + 1)


def test_small_proj_lstm_runs_for_every_per_block_scheme():
    # the case: the 5-row weight_hr used to be cut into four gate blocks and crash
    for scheme in ("xavier_uniform", "orthogonal", "he_normal", "lecun_uniform"):
        lstm = nn.LSTM(10, 20, proj_size=5, num_layers=2, bidirectional=True)
        report = initlab.init_(lstm, scheme, generator=torch.Generator().manual_seed(0))
        assert report.row("weight_hr_l1_reverse").blocks == 1
        assert float(lstm.weight_hr_l0.detach().std()) > 0


def test_proj_lstm_orthogonal_projection_rows_are_orthonormal():
    lstm = _proj_lstm(bidirectional=False)
    initlab.init_(lstm, "orthogonal", generator=torch.Generator().manual_seed(0))
    w = lstm.weight_hr_l0.detach()  # [proj, hidden]: rows orthonormal as one matrix
    assert torch.allclose(w @ w.T, torch.eye(PROJ), atol=1e-5)
