"""probe() on real transformers: every block, every HF Conv1D, token ids and keyword inputs,
numbers checked against forward / backward hooks written here by hand."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from initlab.cli import main
from initlab.errors import ConfigError
from initlab.probe import probe

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_thread")


def _seeded(build):
    with torch.random.fork_rng(devices=[]):  # HF draws its init from the global generator
        torch.manual_seed(0)
        return build().eval()  # eval: dropout off, so two passes see the same numbers


def _gpt2() -> nn.Module:
    config = transformers.GPT2Config(
        n_layer=2, n_embd=64, n_head=4, vocab_size=100, bos_token_id=0, eos_token_id=0
    )
    return _seeded(lambda: transformers.GPT2LMHeadModel(config))


def _ids(gen, batch=4, length=8, vocab=100) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=gen)


def _by_hand(model: nn.Module, names: list[str], call) -> tuple[dict, dict, torch.Tensor]:
    """The same forward and mean-square loss with our own hooks: outputs and their grads."""
    outs, grads = {}, {}

    def keep(name):
        def hook(module, args, output):
            y = output[0] if isinstance(output, tuple) else output
            outs[name] = y.detach().clone()
            y.register_hook(lambda g: grads.__setitem__(name, g.detach().clone()))

        return hook

    handles = [model.get_submodule(n).register_forward_hook(keep(n)) for n in names]
    try:
        for p in model.parameters():
            p.grad = None
        out = call(model)
        if not isinstance(out, torch.Tensor):  # a ModelOutput: logits, else last_hidden_state
            out = out.logits if "logits" in out else out.last_hidden_state
        loss = out.float().pow(2).mean()
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    return outs, grads, loss.detach()


def _no_hooks(model: nn.Module) -> bool:
    if any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()):
        return False
    return all(not getattr(p, "_post_accumulate_grad_hooks", None) for p in model.parameters())


def test_gpt2_every_block_conv1d_and_head_with_output_and_gradient_stats(gen):
    model = _gpt2()
    ids = _ids(gen)
    report = probe(model, {"input_ids": ids}, loss_fn="mean_square")
    assert _no_hooks(model) and all(p.grad is None for p in model.parameters())
    convs = [n for n, m in model.named_modules() if type(m).__name__ == "Conv1D"]
    assert len(convs) == 8  # c_attn, c_proj, mlp.c_fc, mlp.c_proj in each of 2 blocks
    blocks = ["transformer.h.0", "transformer.h.1"]
    names = [*blocks, *convs, "lm_head"]
    kinds = {x.name: x.kind for x in report.layers}
    assert {n: kinds.get(n) for n in names} == {
        **dict.fromkeys(blocks, "block"), **dict.fromkeys([*convs, "lm_head"], "linear"),
    }  # fmt: skip
    assert report.layer("transformer.h.0.mlp.act").activation.startswith("gelu")
    assert report.layer("transformer.h.1").module == "GPT2Block"

    outs, grads, loss = _by_hand(model, names, lambda m: m(input_ids=ids))
    assert report.record.loss == pytest.approx(float(loss), rel=1e-6)
    for name in names:
        got, y, g = report.layer(name), outs[name].double(), grads[name].double()
        assert got.count == y.numel() and got.units == y[0].numel(), name
        assert got.std == pytest.approx(float(y.std(correction=0)), rel=1e-5), name
        assert got.mean == pytest.approx(float(y.mean()), rel=1e-5, abs=1e-7), name
        assert got.grad_std == pytest.approx(float(g.std(correction=0)), rel=1e-5), name
        assert got.grad_norm == pytest.approx(float(g.norm()), rel=1e-5), name
    weight_grads = {w.name: w for w in report.weight_grads}
    for name in [*convs, "lm_head"]:
        w = model.get_submodule(name).weight
        assert weight_grads[f"{name}.weight"].norm == pytest.approx(float(w.grad.norm()), rel=1e-5)
        assert weight_grads[f"{name}.weight"].shape == list(w.shape)  # Conv1D: [in, out]
        std = float(w.detach().double().std(correction=0))
        assert report.layer(name).weight_std == pytest.approx(std, rel=1e-5)
    assert report.layer("transformer.h.0").weight_std is None  # a block has no one weight


def test_token_ids_positional_and_as_keywords_split_alike(gen):
    model = _gpt2()
    ids = _ids(gen, batch=5)
    by_keyword = probe(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                       batches=2)  # fmt: skip
    positional = probe(model, ids, batches=2)
    assert by_keyword.record.samples == positional.record.samples == 5
    assert by_keyword.record.batches == 2
    assert [x.name for x in by_keyword.layers] == [x.name for x in positional.layers]
    for a, b in zip(by_keyword.layers, positional.layers, strict=True):
        assert a.std == pytest.approx(b.std, rel=1e-6) and a.grad_std is None


def test_model_loss_and_callable_loss_on_model_outputs(gen):
    model = _gpt2()
    ids = _ids(gen)
    own = probe(model, {"input_ids": ids, "labels": ids}, loss_fn="model")
    with torch.no_grad():
        expected = float(model(input_ids=ids, labels=ids).loss)
    assert own.record.loss == pytest.approx(expected, rel=1e-6)
    assert own.layer("transformer.h.0").grad_std > 0
    seen = []

    def logsumexp(logits):
        seen.append(type(logits))
        return logits.logsumexp(-1).mean()

    probe(model, ids, loss_fn=logsumexp)
    assert seen == [torch.Tensor]  # a callable gets the ModelOutput's logits
    with pytest.raises(ConfigError, match="labels"):
        probe(model, ids, loss_fn="model")
    with pytest.raises(ConfigError, match="mean_square"):
        probe(model, ids, loss_fn="mean_squares")


def _llama():
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=100,
    )  # fmt: skip
    return _seeded(lambda: transformers.LlamaForCausalLM(config)), "model.layers"


def _bert():
    config = transformers.BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        vocab_size=100,
    )  # fmt: skip
    return _seeded(lambda: transformers.BertModel(config)), "encoder.layer"


def _torch_encoder():
    def build():
        # a GELU module, not the default F.relu, so that the probe sees the activation too
        layer = nn.TransformerEncoderLayer(16, 2, 32, 0.0, nn.GELU(), batch_first=True)
        return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    return _seeded(build), "layers"


@pytest.mark.parametrize(
    ("build", "block"),
    [
        (_llama, "LlamaDecoderLayer"),
        (_bert, "BertLayer"),
        (_torch_encoder, "TransformerEncoderLayer"),
    ],
)
def test_blocks_of_llama_bert_and_torch_encoder(build, block, gen):
    model, where = build()
    if isinstance(model, nn.TransformerEncoder):
        inputs = torch.randn(4, 6, 16, generator=gen)
        call = lambda m: m(inputs)  # noqa: E731
    else:
        inputs = {"input_ids": _ids(gen, length=6)}
        call = lambda m: m(**inputs)  # noqa: E731
    report = probe(model, inputs, loss_fn="mean_square")
    names = [f"{where}.0", f"{where}.1"]
    outs, grads, _ = _by_hand(model, names, call)
    for name in names:
        got = report.layer(name)
        assert (got.kind, got.module) == ("block", block)
        assert got.std == pytest.approx(float(outs[name].double().std(correction=0)), rel=1e-5)
        assert got.grad_std == pytest.approx(float(grads[name].double().std(correction=0)),
                                             rel=1e-5)  # fmt: skip
    assert report.record.of_kind("activation")  # HF's GELUActivation, SiLUActivation, nn.GELU


def test_conv1d_predicted_like_the_linear_it_is(gen):
    from transformers.pytorch_utils import Conv1D

    hf = _seeded(lambda: nn.Sequential(Conv1D(16, 8), nn.Tanh(), Conv1D(4, 16)))
    with torch.no_grad():
        for m in hf:
            if isinstance(m, Conv1D):
                m.weight.normal_(0.0, 0.3, generator=gen)
    plain = _seeded(lambda: nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4)))
    with torch.no_grad():
        for a, b in ((plain[0], hf[0]), (plain[2], hf[2])):
            a.weight.copy_(b.weight.T)
            a.bias.copy_(b.bias)
    x = torch.randn(64, 8, generator=gen)
    got, want = probe(hf, x), probe(plain, x)
    for a, b in zip(got.layers, want.layers, strict=True):
        assert a.kind == b.kind and a.std == pytest.approx(b.std, rel=1e-5)
        assert a.predicted_var == pytest.approx(b.predicted_var, rel=1e-9)
        assert a.weight_std == (b.weight_std and pytest.approx(b.weight_std, rel=1e-9))
    assert got.layer("0").weight_rows_identical is False


def test_cli_probes_an_hf_gpt2_factory_with_token_ids(tmp_path, capsys):
    path = tmp_path / "gpt2.json"
    main(["probe", "--model", "model_zoo.factories:tiny_gpt2", "--input-shape", "12",
          "--batch", "4", "--loss", "mean_square", "--json", str(path)])  # fmt: skip
    out = capsys.readouterr().out
    assert "transformer.h.1" in out and "block" in out and "grad" in out
    record = json.loads(path.read_text())
    layers = {x["name"]: x for x in record["layers"]}
    for name in ("transformer.h.0", "transformer.h.1", "transformer.h.0.attn.c_attn", "lm_head"):
        assert layers[name]["grad_std"] > 0 and layers[name]["std"] > 0
    assert record["samples"] == 4 and record["loss"] > 0


def test_cli_token_ids_beyond_the_vocabulary_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["probe", "--model", "model_zoo.factories:tiny_gpt2", "--input-shape", "8",
              "--batch", "2", "--vocab", "1000"])  # fmt: skip
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert "token ids in [0, 1000) of shape [2, 8]" in err


def test_a_block_returning_a_tuple_is_measured_on_its_first_tensor(gen):
    class Block(nn.Module):  # as transformers 4.x blocks do: (hidden_states, attention, ...)
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            return x + torch.tanh(self.fc(x)), None

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = nn.ModuleList(Block() for _ in range(2))

        def forward(self, x):
            for block in self.h:
                x = block(x)[0]
            return x

    model, x = _seeded(Net), torch.randn(16, 8, generator=gen)
    report = probe(model, x, loss_fn="mean_square")
    outs, grads, _ = _by_hand(model, ["h.0", "h.1"], lambda m: m(x))
    for name in ("h.0", "h.1"):
        got = report.layer(name)
        assert got.kind == "block" and got.weight_std is None
        assert got.std == pytest.approx(float(outs[name].double().std(correction=0)), rel=1e-6)
        assert got.grad_norm == pytest.approx(float(grads[name].norm()), rel=1e-6)
