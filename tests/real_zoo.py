"""A zoo of the models practitioners bring: Hugging Face transformers built from small
configs (never downloaded), torch's transformer, RNNs with projections, every conv kind,
embeddings, Bilinear and tied weights. Each entry builds (model, example input, plain) where
``plain`` means no normalization layer: its output variance at init is checked for ``auto``.

Every weight here has at least 2,000 entries, so a realized std is within about 1.6% (one
standard error) of its target and the 5% checks test the scheme, not the sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn


@dataclass
class Entry:
    model: nn.Module
    example: object  # a tensor or a dict of keyword inputs
    plain: bool = False  # no normalization: auto keeps the output variance near 1


def _tokens(vocab: int, shape=(4, 12)) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(1))


def _normal(*shape) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(2))


def hf_gpt2() -> Entry:
    tf = pytest.importorskip("transformers")
    config = tf.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=64,
                           bos_token_id=0, eos_token_id=0)  # fmt: skip
    return Entry(tf.GPT2LMHeadModel(config), {"input_ids": _tokens(100)})


def hf_bert() -> Entry:
    tf = pytest.importorskip("transformers")
    config = tf.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=128, vocab_size=100, max_position_embeddings=64,
                           type_vocab_size=32)  # fmt: skip
    return Entry(tf.BertModel(config), {"input_ids": _tokens(100)})


def hf_llama() -> Entry:
    tf = pytest.importorskip("transformers")
    config = tf.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=2, intermediate_size=128, vocab_size=100,
                            bos_token_id=0, eos_token_id=0, head_dim=16)  # fmt: skip
    # k_proj/v_proj are [32, 64]: 2,048 entries
    return Entry(tf.LlamaForCausalLM(config), {"input_ids": _tokens(100)})


def torch_transformer() -> Entry:
    model = nn.Transformer(d_model=64, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=128, dropout=0.0, batch_first=True)  # fmt: skip
    return Entry(model, {"src": _normal(2, 10, 64), "tgt": _normal(2, 7, 64)})


class _Last(nn.Module):
    """An RNN's output sequence (its first return value), so a Sequential can end in one."""

    def forward(self, out):
        return out[0]


def lstm_proj() -> Entry:
    model = nn.Sequential(
        nn.LSTM(48, 64, num_layers=2, proj_size=32, bidirectional=True, batch_first=True), _Last()
    )
    return Entry(model, _normal(4, 9, 48))


def gru_bidirectional() -> Entry:
    model = nn.Sequential(nn.GRU(48, 64, num_layers=2, bidirectional=True), _Last())
    return Entry(model, _normal(9, 4, 48))


def conv1d_stack() -> Entry:
    model = nn.Sequential(nn.Conv1d(32, 64, 5, padding=2), nn.ReLU(),
                          nn.Conv1d(64, 64, 5, padding=2), nn.ReLU(), nn.Conv1d(64, 32, 1))  # fmt: skip
    return Entry(model, _normal(8, 32, 64), plain=True)


def conv2d_stack() -> Entry:
    model = nn.Sequential(nn.Conv2d(16, 64, 3, padding=1), nn.Tanh(),
                          nn.Conv2d(64, 64, 3, padding=1), nn.Tanh(), nn.Conv2d(64, 32, 1))  # fmt: skip
    return Entry(model, _normal(4, 16, 24, 24), plain=True)


def conv3d_stack() -> Entry:
    model = nn.Sequential(
        nn.Conv3d(8, 32, 3, padding=1), nn.GELU(), nn.Conv3d(32, 16, 3, padding=1)
    )
    return Entry(model, _normal(2, 8, 10, 10, 10), plain=True)


def grouped_depthwise_conv() -> Entry:
    model = nn.Sequential(
        nn.Conv2d(64, 128, 3, padding=1, groups=4), nn.ReLU(),  # grouped: [128, 16, 3, 3]
        nn.Conv2d(128, 128, 5, padding=2, groups=128), nn.ReLU(),  # depthwise: [128, 1, 5, 5]
        nn.Conv2d(128, 64, 1),  # pointwise
    )  # fmt: skip
    return Entry(model, _normal(4, 64, 20, 20), plain=True)


def conv_transpose() -> Entry:
    model = nn.Sequential(nn.ConvTranspose2d(64, 32, 3, padding=1), nn.ReLU(),
                          nn.ConvTranspose2d(32, 16, 5, padding=2))  # fmt: skip
    return Entry(model, _normal(4, 64, 16, 16), plain=True)


class _Bags(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(1000, 64, padding_idx=0)
        self.bag = nn.EmbeddingBag(1000, 64, mode="mean")

    def forward(self, ids):
        return self.emb(ids).mean(1) + self.bag(ids)


def embeddings() -> Entry:
    return Entry(_Bags(), _tokens(1000))


class _Bilinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bil = nn.Bilinear(32, 48, 64)

    def forward(self, left, right):
        return self.bil(left, right)


def bilinear() -> Entry:
    return Entry(_Bilinear(), {"left": _normal(64, 32), "right": _normal(64, 48)}, plain=True)


class _TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(500, 64)
        self.fc = nn.Linear(64, 64)
        self.head = nn.Linear(64, 500, bias=False)
        self.head.weight = self.emb.weight  # tied: one parameter, two names

    def forward(self, ids):
        return self.head(torch.relu(self.fc(self.emb(ids))))


def tied_lm() -> Entry:
    return Entry(_TiedLM(), _tokens(500))


def deep_mlp() -> Entry:
    layers: list[nn.Module] = [nn.Linear(128, 256), nn.ReLU()]
    for _ in range(6):
        layers += [nn.Linear(256, 256), nn.ReLU()]
    return Entry(nn.Sequential(*layers, nn.Linear(256, 64)), _normal(512, 128), plain=True)


ZOO: dict[str, Callable[[], Entry]] = {
    f.__name__: f
    for f in (
        hf_gpt2,
        hf_bert,
        hf_llama,
        torch_transformer,
        lstm_proj,
        gru_bidirectional,
        conv1d_stack,
        conv2d_stack,
        conv3d_stack,
        grouped_depthwise_conv,
        conv_transpose,
        embeddings,
        bilinear,
        tied_lm,
        deep_mlp,
    )  # fmt: skip
}
