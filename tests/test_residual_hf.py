"""Residual schemes on Hugging Face GPT-2, Llama and BERT, which torch.fx cannot trace.

Blocks come from one recorded forward pass of the model's ``dummy_inputs`` (or of
``example_input``), else from the structure of known HF layers. HF's own ``_init_weights``
(run when a model is built) is the oracle: GPT-2 scales each residual output projection
(``c_proj``) by ``1/sqrt(2 * n_layer)``, which ``gpt2_residual`` must match parameter by
parameter; HF Llama and BERT draw every Linear at 0.02 with no residual scaling, so there
``gpt2_residual`` differs from HF on the output projections only.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initlab
from initlab.errors import InitSpecError
from initlab.initializers.residual_find import find_blocks
from test_residual import Untraceable  # the same untraceable model as the plain residual tests

transformers = pytest.importorskip("transformers")

STD = 0.02


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def build(cls, config):
    """An HF model from a small config. Its constructor runs HF's own init from the global RNG
    (it takes no generator): seeded inside fork_rng, so the global state is left as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return cls(config)


def gpt2():
    config = transformers.GPT2Config(
        n_layer=4, n_embd=128, n_head=4, vocab_size=1000, bos_token_id=0, eos_token_id=0
    )
    return build(transformers.GPT2LMHeadModel, config)


def llama():
    config = transformers.LlamaConfig(
        num_hidden_layers=2, hidden_size=128, intermediate_size=256, num_attention_heads=4,
        num_key_value_heads=4, vocab_size=1000,
    )  # fmt: skip
    return build(transformers.LlamaForCausalLM, config)


def bert():
    config = transformers.BertConfig(
        num_hidden_layers=2, hidden_size=128, intermediate_size=256, num_attention_heads=4,
        vocab_size=1000,
    )  # fmt: skip
    return build(transformers.BertModel, config)


def stds(model: nn.Module) -> dict[str, float]:
    return {n: float(p.detach().double().std()) for n, p in model.named_parameters()
            if p.dim() >= 2}  # fmt: skip


def close(measured: float, target: float, numel: int) -> bool:
    """Within 2%, or 3 standard errors of a sample std (1/sqrt(2n)) for small tensors."""
    return abs(measured / target - 1) < max(0.02, 3 / math.sqrt(2 * numel))


def test_gpt2_residual_on_hf_gpt2_matches_hf_init_per_parameter():
    model = gpt2()
    hf = stds(model)  # HF's own GPT-2 init, drawn at construction
    state = torch.random.get_rng_state()
    report = initlab.init_(model, "gpt2_residual", generator=seeded())
    assert torch.equal(torch.random.get_rng_state(), state)  # the recorded pass drew nothing
    small = STD / math.sqrt(2 * 4)  # 8 branches: attention and MLP in each of 4 layers
    for name, param in model.named_parameters():
        numel, std = param.numel(), float(param.detach().double().std())
        if name.endswith("c_proj.weight"):
            assert close(std, small, numel) and close(hf[name], small, numel), name
            assert report.row(name).target_std == pytest.approx(small)
        elif param.dim() >= 2:  # c_attn, c_fc, wte, wpe
            assert close(std, STD, numel) and close(hf[name], STD, numel), name
        elif "ln" in name and name.endswith("weight"):
            assert torch.all(param == 1), name
        else:
            assert torch.all(param == 0), name  # biases, LayerNorm betas
    # the tied head shares wte's one draw: one row, lm_head reported as shared
    assert model.lm_head.weight is model.transformer.wte.weight
    assert [r.name for r in report.rows].count("transformer.wte.weight") == 1
    assert not any(r.name == "lm_head.weight" for r in report.rows)
    assert dict(report.skipped)["lm_head.weight"].startswith("shared with transformer.wte")
    blocks = report.extra["residual_blocks"]
    assert [b["name"] for b in blocks] == [f"transformer.h.{i}:{k}" for i in range(4)
                                           for k in ("attn", "mlp")]  # fmt: skip
    assert blocks[0]["layers"] == ["transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj"]
    assert {b["found_by"] for b in blocks} == {"recorded"}
    assert any("recording one forward pass of the model's dummy_inputs" in n for n in report.notes)


def test_branches_rule_on_gpt2_gives_the_same_weights():
    found, ruled = gpt2(), gpt2()
    initlab.init_(found, "gpt2_residual", generator=seeded(3))
    report = initlab.init_(ruled, {"name": "gpt2_residual", "branches": "*.attn|*.mlp"},
                           generator=seeded(3))  # fmt: skip
    assert [b["name"] for b in report.extra["residual_blocks"]][:2] == [
        "transformer.h.0.attn", "transformer.h.0.mlp",
    ]  # fmt: skip
    assert [b["layers"][-1] for b in report.extra["residual_blocks"]][:2] == [
        "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_proj",
    ]  # fmt: skip
    for (name, a), b in zip(found.named_parameters(), ruled.parameters()):
        assert torch.equal(a, b), name


def test_gpt2_residual_on_llama_scales_o_proj_and_down_proj_unlike_hf():
    model = llama()
    hf = stds(model)
    report = initlab.init_(model, "gpt2_residual", generator=seeded())
    small = STD / math.sqrt(2 * 2)
    assert [b["name"] for b in report.extra["residual_blocks"]] == [
        "model.layers.0:self_attn", "model.layers.0:mlp", "model.layers.1:self_attn",
        "model.layers.1:mlp",
    ]  # fmt: skip
    for name, param in model.named_parameters():
        if param.dim() < 2:
            continue
        std, numel = float(param.detach().double().std()), param.numel()
        assert close(hf[name], STD, numel), name  # HF Llama: every Linear 0.02, no scaling
        projection = name.endswith(("o_proj.weight", "down_proj.weight"))
        assert close(std, small if projection else STD, numel), name
    # LlamaRMSNorm is not a norm initlab fills: left as HF built it (ones), reported skipped
    skipped = dict(report.skipped)
    assert "model.layers.0.input_layernorm.weight" in skipped
    assert torch.all(model.model.norm.weight == 1)


def test_bert_blocks_and_gpt2_residual_there():
    model = bert()
    hf = stds(model)
    report = initlab.init_(model, "gpt2_residual", generator=seeded())
    blocks = report.extra["residual_blocks"]
    # post-norm: the add sits inside BertSelfOutput / BertOutput, before their LayerNorm; the
    # embeddings' sum (ids from one buffer) is no block
    assert [b["name"] for b in blocks] == [
        "encoder.layer.0.attention", "encoder.layer.0:output", "encoder.layer.1.attention",
        "encoder.layer.1:output",
    ]  # fmt: skip
    assert blocks[0]["layers"][-1] == "encoder.layer.0.attention.output.dense"
    assert blocks[1]["layers"] == ["encoder.layer.0.intermediate.dense",
                                   "encoder.layer.0.output.dense"]  # fmt: skip
    assert all(b["norm"] is None for b in blocks)
    for name, param in model.named_parameters():
        if param.dim() < 2:
            continue
        std, numel = float(param.detach().double().std()), param.numel()
        assert close(hf[name], STD, numel), name  # HF BERT: 0.02 everywhere
        projection = name.endswith("output.dense.weight")
        assert close(std, STD / 2 if projection else STD, numel), name  # 4 branches: 1/sqrt(4)


def test_module_structure_when_the_forward_pass_fails():
    found = find_blocks(gpt2(), example_input="not a batch")
    assert found.method.startswith("found from the module structure of GPT2Block")
    assert "running example_input failed" in found.method
    assert [b.name for b in found.blocks][:2] == ["transformer.h.0:attn", "transformer.h.0:mlp"]
    assert found.blocks[1].layers == ("transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj")
    assert {b.found_by for b in found.blocks} == {"structure"}
    by_structure = find_blocks(bert(), example_input="not a batch").blocks
    assert [b.last_layer for b in by_structure[:2]] == [
        "encoder.layer.0.attention.output.dense", "encoder.layer.0.output.dense",
    ]  # fmt: skip
    llama_blocks = find_blocks(llama(), example_input="not a batch").blocks
    assert [b.last_layer for b in llama_blocks[:2]] == [
        "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.down_proj",
    ]  # fmt: skip


def test_recording_leaves_the_model_as_it_was_and_takes_example_input():
    model = gpt2()
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    ids = torch.randint(0, 1000, (2, 7), generator=seeded(1))
    found = find_blocks(model, example_input={"input_ids": ids})
    assert "forward pass of example_input" in found.method and len(found.blocks) == 8
    assert all(m.training for m in model.modules())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert found.order[0] == "transformer.wte" and found.order[-1] == "lm_head"


def test_example_input_finds_blocks_of_untraceable_plain_models():
    model = Untraceable()
    with pytest.raises(InitSpecError, match="pass example_input="):
        initlab.init_(model, "zero_last_gamma", generator=seeded())
    x = torch.randn(4, 8, generator=seeded(1))
    report = initlab.init_(model, "zero_last_gamma", generator=seeded(), example_input=x)
    assert report.extra["residual_blocks"][0]["norm"] == "branch.3"
    assert torch.all(model.branch[3].weight == 0)


def test_other_residual_schemes_on_hf_models():
    for build_model in (gpt2, llama, bert):
        with pytest.raises(InitSpecError, match="Pre-norm branches .* post-norm layers"):
            initlab.init_(build_model(), "zero_last_gamma", generator=seeded())
        with pytest.raises(InitSpecError, match="needs a gate parameter"):
            initlab.init_(build_model(), "skipinit", generator=seeded())
    model = gpt2()
    report = initlab.init_(model, "fixup", generator=seeded())
    for block in model.transformer.h:
        assert torch.all(block.attn.c_proj.weight == 0) and torch.all(block.mlp.c_proj.weight == 0)
        assert close(float(block.mlp.c_fc.weight.detach().std()), math.sqrt(2 / 128) / math.sqrt(8),
                     block.mlp.c_fc.weight.numel())  # fmt: skip
    assert float(model.transformer.wte.weight.detach().std()) > 0  # the tied head is not zeroed
    assert any("lm_head" in n and "tied" in n for n in report.notes)
    assert any("normalization layer" in n for n in report.notes)
    model = llama()  # untied head: Fixup's zero classifier
    initlab.init_(model, "fixup", generator=seeded())
    assert (
        torch.all(model.lm_head.weight == 0)
        and float(model.model.embed_tokens.weight.detach().std()) > 0
    )


class GatedWrite(nn.Module):
    """Untraceable, a gate, and the branch written in place into a zeros_like buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)
        self.gate = nn.Parameter(torch.ones(()))

    def forward(self, x):
        if float(x.abs().sum()) < 0:
            return x
        out = torch.zeros_like(x)  # reads x's shape only: no data flow
        out[:] = self.fc2(torch.relu(self.fc1(x)))
        h = x.clone()
        h += self.gate * out
        return h


def test_recorded_pass_sees_gates_in_place_writes_and_torch_layers():
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    model = nn.Sequential(GatedWrite(), GatedWrite(), nn.TransformerEncoder(layer, 1))
    x = torch.randn(2, 4, 8, generator=seeded(1))
    found = find_blocks(model, example_input=x)
    assert [(b.name, b.layers, b.gate) for b in found.blocks[:2]] == [
        ("0", ("0.fc1", "0.fc2"), "0.gate"), ("1", ("1.fc1", "1.fc2"), "1.gate"),
    ]  # fmt: skip
    assert [b.name for b in found.blocks[2:]] == ["2.layers.0:self_attn", "2.layers.0:feed_forward"]
    assert "and PyTorch's transformer layers" in found.method
    initlab.init_(model, "skipinit", generator=seeded(), example_input=x)
    assert float(model[0].gate.detach()) == 0 and float(model[1].gate.detach()) == 0
