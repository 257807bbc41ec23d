"""Transformers: per-block fans of packed attention projections, PyTorch's encoder and
decoder layers, embedding stds, and per-head attention statistics (PyTorch as the oracle)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from rich.console import Console
from torch import nn

import initlab
from initlab.errors import InitSpecError
from initlab.probe.attention import attention_stats, format_heads

E = 256


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_packed_qkv_blocks_each_get_a_square_layers_xavier_std():
    mha = nn.MultiheadAttention(E, 8)
    report = initlab.init_(mha, "xavier_uniform", generator=seeded())
    square = math.sqrt(2 / (E + E))  # xavier_uniform std of a [256, 256] layer
    whole = math.sqrt(2 / (E + 3 * E))  # what a naive [768, 256] fan gives (PyTorch's default)
    row = report.row("in_proj_weight")
    assert (row.blocks, row.fan_in, row.fan_out, row.shape) == (3, E, E, [3 * E, E])
    assert row.target_std == pytest.approx(square)
    stds = [float(mha.in_proj_weight[i * E : (i + 1) * E].detach().std()) for i in range(3)]
    print("q, k, v block std / xavier [256, 256] std:", [round(s / square, 4) for s in stds])
    assert all(abs(s / square - 1) < 0.03 for s in stds)
    assert all(abs(s / whole - 1) > 0.3 for s in stds)  # the split matters
    limit = math.sqrt(3) * square
    assert float(mha.in_proj_weight.detach().abs().max()) <= limit
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(report.table())
    assert "in_proj_weight (3 blocks)" in console.export_text()


def test_separate_qkv_projections_use_their_own_fans():
    mha = nn.MultiheadAttention(64, 4, kdim=32, vdim=16)
    report = initlab.init_(mha, "xavier_normal", generator=seeded())
    for name, fan_in in [("q_proj_weight", 64), ("k_proj_weight", 32), ("v_proj_weight", 16)]:
        row = report.row(name)
        assert (row.fan_in, row.fan_out, row.blocks) == (fan_in, 64, 1)
        assert row.target_std == pytest.approx(math.sqrt(2 / (fan_in + 64)))


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_transformer_layers_get_per_block_fans(kind):
    ff = 1024
    if kind == "encoder":
        layer = nn.TransformerEncoderLayer(E, 4, ff)
        attentions = ["self_attn"]
    else:
        layer = nn.TransformerDecoderLayer(E, 4, ff)
        attentions = ["self_attn", "multihead_attn"]
    report = initlab.init_(layer, "xavier_uniform", generator=seeded())
    expected = {"linear1.weight": (E, ff, 1), "linear2.weight": (ff, E, 1)}
    for attn in attentions:
        expected[f"{attn}.in_proj_weight"] = (E, E, 3)
        expected[f"{attn}.out_proj.weight"] = (E, E, 1)
    for name, (fan_in, fan_out, blocks) in expected.items():
        row = report.row(name)
        assert (row.fan_in, row.fan_out, row.blocks) == (fan_in, fan_out, blocks), name
        target = math.sqrt(2 / (fan_in + fan_out))
        w = layer.get_parameter(name).detach()
        parts = w.chunk(blocks)
        assert all(abs(float(p.std()) / target - 1) < 0.03 for p in parts), name
    norms = [r for r in report.rows if r.name.startswith("norm")]
    assert {r.scheme for r in norms} == {"ones", "zeros"} and len(norms) == 2 * (
        len(attentions) + 1
    )


def test_embedding_normal_choices():
    emb = nn.Embedding(2000, E)
    report = initlab.init_(emb, "embedding_normal", generator=seeded())
    assert report.row("weight").target_std == pytest.approx(E**-0.5)
    assert abs(float(emb.weight.detach().std()) * math.sqrt(E) - 1) < 0.02
    for spec, std in [("embedding_normal:std=0.02", 0.02), ("embedding_normal:std=1", 1.0)]:
        initlab.init_(emb, spec, generator=seeded())
        assert abs(float(emb.weight.detach().std()) / std - 1) < 0.02
    model = nn.Sequential(nn.Embedding(100, 32), nn.Linear(32, 8))
    initlab.init_(model, "he_normal", rules=[("0.*", "embedding_normal")], generator=seeded())
    assert abs(float(model[0].weight.detach().std()) * math.sqrt(32) - 1) < 0.1
    with pytest.raises(InitSpecError, match="2-d"):
        initlab.init_(nn.Conv2d(2, 2, 3), "embedding_normal", generator=seeded())


def test_attention_stats_match_pytorch_weights_with_masks():
    mha = nn.MultiheadAttention(32, 4, batch_first=True, add_bias_kv=True)
    initlab.init_(mha, "normal:std=0.3", bias="normal:std=0.1", rules=[("bias_*", "normal:std=1")],
                  generator=seeded())  # fmt: skip
    x = torch.randn(3, 7, 32, generator=seeded(2))
    causal = torch.ones(7, 7, dtype=torch.bool).triu(1)
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[0, 5:] = True
    kwargs = {"attn_mask": causal, "key_padding_mask": padding}
    heads = attention_stats(mha, (x, x, x))
    _, w = mha(x, x, x, need_weights=True, average_attn_weights=False)
    entropy = -torch.special.xlogy(w, w).sum(-1).mean((0, 2))
    assert [h.entropy for h in heads] == pytest.approx(entropy.tolist(), rel=1e-6)

    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False, **kwargs)[0]

    heads = attention_stats(Masked(), x)
    _, w = mha(x, x, x, need_weights=True, average_attn_weights=False, **kwargs)
    entropy = -torch.special.xlogy(w, w).sum(-1).mean((0, 2))
    assert [h.entropy for h in heads] == pytest.approx(entropy.tolist(), rel=1e-6)
    # the logits themselves: rebuilt by hand over the allowed pairs of head 0
    w_in, b_in = mha.in_proj_weight.detach(), mha.in_proj_bias.detach()
    q = x @ w_in[:32].T + b_in[:32]
    k = x @ w_in[32:64].T + b_in[32:64]
    k = torch.cat([k, mha.bias_k.detach().expand(3, 1, 32)], dim=1)
    logits = (q[..., :8] @ k[..., :8].transpose(1, 2)) / math.sqrt(8)
    allowed = ~torch.cat([causal, torch.zeros(7, 1, dtype=torch.bool)], 1).expand(3, 7, 8)
    allowed = allowed & ~torch.cat([padding, torch.zeros(3, 1, dtype=torch.bool)], 1)[:, None]
    assert heads[0].logit_std == pytest.approx(float(logits[allowed].double().std(correction=0)))
    assert heads[0].max_entropy == pytest.approx(float(allowed.sum(-1).double().log().mean()))


def encoder(embedding_std: float) -> nn.Module:
    layer = nn.TransformerEncoderLayer(E, 4, 4 * E, dropout=0.0, batch_first=True)
    model = nn.Sequential(nn.Embedding(1000, E),
                          nn.TransformerEncoder(layer, 4, enable_nested_tensor=False))  # fmt: skip
    initlab.init_(model, "xavier_uniform", rules=[("0.weight", f"normal:std={embedding_std}")],
                  generator=seeded())  # fmt: skip
    return model.eval()


def test_embedding_std_changes_attention_logits_and_entropy():
    tokens = torch.randint(0, 1000, (16, 32), generator=seeded(1))
    unit = attention_stats(encoder(1.0), tokens)
    small = attention_stats(encoder(0.02), tokens)
    print("embedding std 1:\n" + format_heads(unit))
    print("embedding std 0.02:\n" + format_heads(small))
    assert len(unit) == len(small) == 4 * 4
    first = [(u, s) for u, s in zip(unit, small) if u.module == "1.layers.0.self_attn"]
    for u, s in first:  # logits scale with the embedding std squared: (1 / 0.02)^2 = 2500
        assert 1500 < u.logit_std / s.logit_std < 4000
        assert s.entropy == pytest.approx(s.max_entropy, abs=1e-4)  # uniform attention
        assert u.entropy < s.max_entropy - 0.2
    # post-norm: LayerNorm after layer 0 removes the scale, so later layers barely differ
    later = [(u, s) for u, s in zip(unit, small) if u.module != "1.layers.0.self_attn"]
    assert all(abs(u.logit_std / s.logit_std - 1) < 0.1 for u, s in later)
